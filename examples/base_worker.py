"""A worker class with a permanent-error hook: the habit of a RabbitMQ worker framework's
``BaseWorker`` (``initialize``, ``executeTask``, ``isPermanentError``), in ``durable``.

=====================================  ===========================================
``BaseWorker`` habit                   ``durable`` form
=====================================  ===========================================
``class W extends BaseWorker``         ``@app.consumer("invoices") class W(durable.Consumer)``
``initialize()`` (once per process)    ``setup()``
``executeTask(task)``                  ``process(payload)``: the workflow body
``isPermanentError(err)``              ``is_permanent(error)``: true ends the run at once,
                                       its steps' retries included
publish a task to the queue            ``client.start(W, payload)``
=====================================  ===========================================

Three invoices are sent: to a customer who exists (its flaky step is retried and it
succeeds); to one who does not: ``is_permanent`` says ``CustomerGone`` is not worth another
try, so the run fails after one attempt, its error type ``CustomerGone``; and to one whose
mailbox the server refuses: the step raises ``durable.PermanentError(...) from exc``, which
also ends the run at once and records the real cause's type, ``MailboxMissing``.

    python examples/base_worker.py demo               # an embedded worker, three tasks
    python examples/base_worker.py worker             # or: a worker until Ctrl-C ...
    python examples/base_worker.py send cust-1        # ... and tasks from another terminal
"""

from __future__ import annotations

import argparse
import os
import sys

import durable

TEST_ARGS = ["demo"]

DEFAULT_DATABASE = "sqlite:///base_worker.db"


def _database_from_argv() -> str:
    """``--database URL``, else ``$DURABLE_DATABASE_URL``, else ``base_worker.db``."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--database")
    known, _ = pre.parse_known_args()
    return known.database or os.environ.get("DURABLE_DATABASE_URL") or DEFAULT_DATABASE


app = durable.App("billing", database=_database_from_argv(), poll_interval=0.2)
CUSTOMERS = {"cust-1": "ada@example.com", "cust-2": "nobody@invalid"}


class CustomerGone(Exception):
    """The customer was deleted: sending again will never help."""


@app.step(retry=durable.Retry(attempts=3, initial_delay=0.05))
def render(customer: str) -> str:
    """Render the invoice; the customer's record is looked up (a flaky service)."""
    if (durable.info().step_attempt or 1) == 1:
        raise ConnectionError("billing service timed out")  # retried: not permanent
    if customer not in CUSTOMERS:
        raise CustomerGone(f"customer {customer} no longer exists")
    return f"invoice for {CUSTOMERS[customer]}"


class MailboxMissing(OSError):
    """The mail server refused the address."""


def smtp_send(invoice: str) -> str:
    """A stand-in for the mail client: refuses addresses at ``invalid``."""
    if invoice.endswith("@invalid"):
        raise MailboxMissing(f"550 no such mailbox: {invoice.rsplit(' ', 1)[-1]}")
    return f"delivered {invoice}"


@app.step
def deliver(invoice: str) -> str:
    try:
        return smtp_send(invoice)
    except MailboxMissing as exc:  # refused for good: no retry, and say why
        raise durable.PermanentError("cannot deliver") from exc


@app.consumer("invoices", retry=durable.Retry(attempts=5, initial_delay=0.05))
class InvoiceWorker(durable.Consumer):
    """``class InvoiceWorker extends BaseWorker``."""

    def setup(self) -> None:  # initialize()
        self.sent = 0
        print("invoices: connected to the mail server", flush=True)

    def process(self, payload: dict[str, str]) -> str:  # executeTask(task)
        invoice = render(payload["customer"])
        return deliver(invoice)

    def is_permanent(self, error: BaseException) -> bool:  # isPermanentError(err)
        return isinstance(error, CustomerGone)

    def teardown(self) -> None:
        print("invoices: mail server connection closed", flush=True)


def demo() -> int:
    client = app.client()
    with app.worker():
        ok = client.start(InvoiceWorker, {"customer": "cust-1"})
        gone = client.start(InvoiceWorker, {"customer": "cust-9"})
        bounced = client.start(InvoiceWorker, {"customer": "cust-2"})
        print(ok.result(timeout=30), flush=True)
        for h in (gone, bounced):
            try:
                h.result(timeout=30)
            except durable.RunFailedError as exc:
                print(f"failed at once: {exc.error_type}: {exc.error_message}", flush=True)
    for h, cause in ((gone, "CustomerGone"), (bounced, "MailboxMissing")):
        info = h.info()
        failures = [e for e in h.events() if e.type == "step_failed"]
        print(
            f"{cause}: run attempts {info.attempt}, step failures {len(failures)} "
            "(a timeout, retried; then the permanent error, not retried)",
            flush=True,
        )
        assert info.error_type == cause and info.attempt == 1
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="the log's URL (default: base_worker.db here)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="an embedded worker and three tasks, in one process")
    sub.add_parser("worker", help="a worker until SIGTERM or Ctrl-C")
    s = sub.add_parser("send", help="send one invoice task and wait for it")
    s.add_argument("customer")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo()
    if args.command == "worker":
        app.run_worker()
        return 0
    h = app.client().start(InvoiceWorker, {"customer": args.customer})
    try:
        print(h.result(timeout=600))
    except durable.RunFailedError as exc:
        print(f"run {h.id} failed: {exc.error_type}: {exc.error_message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
