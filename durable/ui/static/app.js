// The dashboard's few lines of script: live updates of a run (server-sent events) and the
// actions (cancel, resume, fork, signal, bulk), each confirmed and sent with the bearer token.
"use strict";
(function () {
  const meta = (name) => (document.querySelector(`meta[name="${name}"]`) || {}).content || "";
  const base = meta("durable-base");
  const actionsOn = meta("durable-actions") === "on";
  const dialog = document.getElementById("confirm");
  let toastTimer = null;

  function toast(text, kind) {
    const el = document.getElementById("toast");
    el.textContent = text;
    el.className = "show " + (kind || "");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.className = ""; }, 6000);
  }

  function storedToken() {
    return meta("durable-token") || sessionStorage.getItem("durable-token") || "";
  }

  function confirmAction(text) {
    return new Promise((resolve) => {
      const needToken = !storedToken();
      document.getElementById("confirm-text").textContent = text;
      document.getElementById("token-field").hidden = !needToken;
      dialog.returnValue = "";
      dialog.addEventListener("close", function onClose() {
        dialog.removeEventListener("close", onClose);
        if (dialog.returnValue !== "ok") return resolve(false);
        if (needToken) {
          const given = document.getElementById("token-input").value.trim();
          if (!given) { toast("An action needs the dashboard's token.", "bad"); return resolve(false); }
          sessionStorage.setItem("durable-token", given);
        }
        resolve(true);
      });
      dialog.showModal();
    });
  }

  async function act(runId, action, body) {
    const resp = await fetch(`${base}/api/runs/${encodeURIComponent(runId)}/${action}`, {
      method: "POST",
      headers: { "Authorization": "Bearer " + storedToken(), "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
      credentials: "same-origin",
    });
    let data = {};
    try { data = await resp.json(); } catch (e) { data = { error: resp.statusText }; }
    if (resp.status === 401 || resp.status === 403) {
      if (!meta("durable-token")) sessionStorage.removeItem("durable-token");
    }
    return { ok: resp.ok, status: resp.status, data: data };
  }

  // -- one run ----------------------------------------------------------------------------
  const run = document.getElementById("run");
  let source = null;

  function setButtons(status) {
    const terminal = ["completed", "failed", "cancelled"].includes(status);
    const cancel = document.querySelector('[data-action="cancel"]');
    const resume = document.querySelector('[data-action="resume"]');
    if (cancel) cancel.disabled = terminal;
    if (resume) resume.disabled = !["failed", "cancelled", "blocked"].includes(status);
  }

  function startLive() {
    if (!run) return;
    if (source) source.close();
    const dot = document.getElementById("live-dot");
    source = new EventSource(`${base}/runs/${encodeURIComponent(run.dataset.id)}/live?after=${run.dataset.seq || 0}&all=${run.dataset.all || 0}`);
    if (dot) dot.hidden = false;
    source.addEventListener("update", (msg) => {
      const u = JSON.parse(msg.data);
      for (const [id, html] of Object.entries(u.html)) {
        const el = document.getElementById(id);
        if (el) el.innerHTML = html;  // rendered and escaped by the server
      }
      const count = document.getElementById("journal-count");
      if (count) count.textContent = `${u.last_seq} events`;
      run.dataset.seq = u.last_seq;
      run.dataset.status = u.status;
      setButtons(u.status);
    });
    source.addEventListener("end", () => {
      source.close();
      source = null;
      if (dot) dot.hidden = true;
    });
  }

  if (run) {
    if (run.dataset.live === "on") startLive();
    document.querySelectorAll("[data-action]").forEach((button) => {
      button.addEventListener("click", async () => {
        const action = button.dataset.action;
        const id = run.dataset.id;
        let body = {};
        let question = `${action[0].toUpperCase() + action.slice(1)} run ${id}?`;
        if (action === "fork") {
          const step = parseInt(document.getElementById("fork-step").value, 10);
          body = { from_step: step };
          question = `Fork run ${id} from position ${step}? A new run keeps the outcomes before it.`;
        } else if (action === "signal") {
          const name = document.getElementById("signal-name").value.trim();
          const text = document.getElementById("signal-payload").value.trim();
          if (!name) { toast("Give the signal a name.", "bad"); return; }
          let payload = null;
          if (text) {
            try { payload = JSON.parse(text); } catch (e) { toast("The payload is not JSON.", "bad"); return; }
          }
          body = { name: name, payload: payload };
          question = `Send signal "${name}" to run ${id}?`;
        }
        if (!(await confirmAction(question))) return;
        const got = await act(id, action, body);
        if (!got.ok) { toast(`${action} refused (${got.status}): ${got.data.error || ""}`, "bad"); return; }
        if (action === "fork") {
          toast(`Forked: new run ${got.data.id}`, "good");
          setTimeout(() => { location.href = `${base}/runs/${encodeURIComponent(got.data.id)}`; }, 900);
          return;
        }
        toast(`${action}: done${got.data.status ? ", the run is " + got.data.status : ""}`, "good");
        setButtons(got.data.status);
        startLive();
      });
    });
  }

  // -- the runs list: live counts per status -------------------------------------------------
  const counts = document.getElementById("counts");
  if (counts) {
    const fmt = new Intl.NumberFormat("en-US");
    const refreshCounts = async () => {
      if (document.hidden) return;
      try {
        const resp = await fetch(`${base}/api/counts?${counts.dataset.query}`, { credentials: "same-origin" });
        if (!resp.ok) return;
        const got = await resp.json();
        const set = (key, n) => {
          const el = counts.querySelector(`[data-count="${key}"]`);
          if (el) el.textContent = fmt.format(n);
        };
        set("total", got.total);
        for (const [status, n] of Object.entries(got.counts)) set(status, n);
        counts.dataset.readAt = got.read_at;
        counts.classList.add("counted");
      } catch (e) { /* the next refresh tries again */ }
    };
    refreshCounts();
    setInterval(refreshCounts, 5000);
    document.addEventListener("visibilitychange", refreshCounts);
  }

  // -- the runs list: select and act on many ------------------------------------------------
  const table = document.getElementById("runs");
  const bulk = document.getElementById("bulk");
  if (table && bulk && actionsOn) {
    const picks = () => Array.from(table.querySelectorAll("input.pick:checked"));
    const refresh = () => {
      const n = picks().length;
      bulk.hidden = n === 0;
      document.getElementById("bulk-count").textContent = `${n} selected`;
    };
    table.addEventListener("change", refresh);
    const all = document.getElementById("select-all");
    if (all) all.addEventListener("change", () => {
      table.querySelectorAll("input.pick").forEach((box) => { box.checked = all.checked; });
      refresh();
    });
    bulk.querySelectorAll("[data-bulk]").forEach((button) => {
      button.addEventListener("click", async () => {
        const action = button.dataset.bulk;
        const ids = picks().map((box) => box.value);
        if (!ids.length || !(await confirmAction(`${action[0].toUpperCase() + action.slice(1)} ${ids.length} run(s)?`))) return;
        let done = 0;
        const failed = [];
        for (const id of ids) {
          const got = await act(id, action);
          if (got.ok) done += 1; else failed.push(`${id}: ${got.data.error || got.status}`);
        }
        toast(`${action}: ${done} done` + (failed.length ? `, ${failed.length} refused (${failed[0]})` : ""), failed.length ? "bad" : "good");
        if (done) setTimeout(() => location.reload(), 1200);
      });
    });
  }
})();
