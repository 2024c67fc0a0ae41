"""msgspec encoding of user values: arguments, results, outputs, signal payloads.

Every user value is encoded once, to MessagePack, before anything is written; what msgspec
cannot encode is refused with :class:`SerializationError`, and what is larger than the App's
``max_payload_bytes`` with :class:`PayloadTooLargeError`. Decoding into a type annotation uses
one cached decoder per type. Pickle is never used.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

import msgspec

from durable.errors import (
    CorruptJournalError,
    InvalidArgumentError,
    PayloadTooLargeError,
    SerializationError,
)

__all__ = ["DEFAULT_MAX_PAYLOAD", "Codec", "Signature", "return_type"]

DEFAULT_MAX_PAYLOAD = 2 * 1024 * 1024

_encoder = msgspec.msgpack.Encoder()


@functools.lru_cache(maxsize=1024)
def _decoder(type_: Any) -> msgspec.msgpack.Decoder[Any]:
    return msgspec.msgpack.Decoder(type_)


_any_decoder = msgspec.msgpack.Decoder()
_RawArgs = tuple[list[msgspec.Raw], dict[str, msgspec.Raw]]
_args_decoder = msgspec.msgpack.Decoder(_RawArgs)


class Codec:
    """Encodes and decodes user values under one payload size limit."""

    __slots__ = ("max_payload_bytes",)

    def __init__(self, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD) -> None:
        if max_payload_bytes <= 0:
            raise ValueError("max_payload_bytes must be positive")
        self.max_payload_bytes = max_payload_bytes

    def encode(self, value: Any, what: str = "value") -> bytes:
        """Encode ``value``; raise ``SerializationError`` or ``PayloadTooLargeError``."""
        try:
            data = _encoder.encode(value)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(
                f"cannot encode {what} of type {type(value).__qualname__}: {exc}"
            ) from exc
        if len(data) > self.max_payload_bytes:
            raise PayloadTooLargeError(
                f"{what} is {len(data)} bytes encoded, over the limit of "
                f"{self.max_payload_bytes} bytes (App(max_payload_bytes=...))"
            )
        return data

    def encode_args(self, args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> bytes:
        """Encode a call's positional and keyword arguments as one payload."""
        return self.encode((list(args), kwargs), what)

    @staticmethod
    def decode(data: bytes, type_: Any = Any) -> Any:
        """Decode ``data`` into ``type_`` (``Any``: plain Python values).

        Raises:
            msgspec.ValidationError: the value does not fit ``type_``.
            CorruptJournalError: the bytes are not valid MessagePack.
        """
        try:
            if type_ is Any:
                return _any_decoder.decode(data)
            return _decoder(type_).decode(data)
        except msgspec.ValidationError:
            raise
        except (msgspec.DecodeError, TypeError, ValueError, RecursionError) as exc:
            raise CorruptJournalError(f"undecodable payload: {exc}") from exc


def return_type(fn: Callable[..., Any]) -> Any:
    """The return annotation of ``fn`` as a type msgspec can decode into, else ``Any``."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        return Any
    ret = hints.get("return", Any)
    if ret is None or ret is type(None):
        return Any
    if inspect.iscoroutinefunction(fn) and typing.get_origin(ret) is collections.abc.Coroutine:
        ret = typing.get_args(ret)[-1]
    try:
        _decoder(ret)
    except TypeError:
        return Any
    return ret


class Signature:
    """A function's parameters with the types their stored arguments decode into."""

    __slots__ = ("_hints", "_params", "_sig")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._sig = inspect.signature(fn)
        self._params = list(self._sig.parameters.values())
        try:
            hints = typing.get_type_hints(fn)
        except Exception:
            hints = {}
        self._hints: dict[str, Any] = {}
        for p in self._params:
            t = hints.get(p.name, Any)
            try:
                _decoder(t)
            except TypeError:
                t = Any
            self._hints[p.name] = t

    def check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise ``TypeError`` if the arguments do not fit the function's parameters."""
        self._sig.bind(*args, **kwargs)

    def _types(self, n_args: int, names: Any) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
        """The parameter name and decoding type of each of ``n_args`` positional arguments
        and of each keyword argument in ``names``."""
        positional = [
            p
            for p in self._params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
        out: list[tuple[str, Any]] = []
        for i in range(n_args):
            if i < len(positional) and positional[i].kind is not inspect.Parameter.VAR_POSITIONAL:
                p = positional[i]
                out.append((p.name, self._hints[p.name]))
            elif positional and positional[-1].kind is inspect.Parameter.VAR_POSITIONAL:
                p = positional[-1]
                out.append((f"*{p.name}", Any if i < len(positional) - 1 else self._hints[p.name]))
            else:
                out.append((f"#{i}", Any))
        return out, {k: self._hints.get(k, Any) for k in names}

    def _raw(self, data: bytes) -> _RawArgs:
        try:
            return _args_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CorruptJournalError(f"undecodable arguments: {exc}") from exc

    def decode_args(self, data: bytes) -> tuple[list[Any], dict[str, Any]]:
        """Decode a stored ``(args, kwargs)`` payload into the annotated parameter types."""
        raw_args, raw_kwargs = self._raw(data)
        types, kw = self._types(len(raw_args), raw_kwargs)
        args = [Codec.decode(raw, t) for raw, (_, t) in zip(raw_args, types, strict=True)]
        kwargs = {k: Codec.decode(raw, kw[k]) for k, raw in raw_kwargs.items()}
        return args, kwargs

    def check_types(self, data: bytes, what: str) -> None:
        """Check that encoded ``(args, kwargs)`` decode into the annotated parameter types,
        as the worker will decode them.

        Raises:
            InvalidArgumentError: one does not; the message names the parameter and the type
                it expects.
        """
        raw_args, raw_kwargs = self._raw(data)
        types, kw = self._types(len(raw_args), raw_kwargs)
        pairs = [(raw, n, t) for raw, (n, t) in zip(raw_args, types, strict=True)]
        pairs += [(raw, k, kw[k]) for k, raw in raw_kwargs.items()]
        for raw, name, t in pairs:
            if t is Any:
                continue
            try:
                Codec.decode(raw, t)
            except msgspec.ValidationError as exc:
                raise InvalidArgumentError(
                    f"argument {name.lstrip('*')!r} of {what} does not fit its annotation "
                    f"{_type_name(t)}: {exc}"
                ) from None


def _type_name(t: Any) -> str:
    """How an annotation is shown in a message: ``int``, ``list[str]``."""
    return t.__name__ if isinstance(t, type) and not typing.get_args(t) else repr(t)
