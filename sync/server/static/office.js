// The office's one script: a confirmation before a revoke, and immediate reports arriving
// live on the alarms page (server-sent events; each new row is rendered by the server).
"use strict";
document.querySelectorAll("form.confirm").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});

const table = document.getElementById("alarms");
if (table && table.dataset.stream) {
  const live = document.getElementById("live");
  const body = table.querySelector("tbody");
  const shown = (id) => body.querySelector(`tr[data-alarm="${id}"]`) !== null;
  const add = async (id) => {
    if (!id || shown(id)) return;
    const r = await fetch(table.dataset.row + encodeURIComponent(id), {credentials: "same-origin"});
    if (!r.ok || shown(id)) return;
    const holder = document.createElement("tbody");
    holder.innerHTML = (await r.text()).trim();
    const row = holder.firstElementChild;
    if (!row) return;
    row.classList.add("fresh");
    body.prepend(row);
    document.getElementById("no-alarms").hidden = true;
  };
  const url = new URL(table.dataset.stream, window.location.href);
  if (table.dataset.after) url.searchParams.set("after", table.dataset.after);
  const source = new EventSource(url);
  source.onopen = () => { live.textContent = live.dataset.live; live.className = ""; };
  source.onerror = () => { live.textContent = live.dataset.lost; live.className = "lost"; };
  const arrived = (event) => {
    let id = event.lastEventId;
    try { id = String(JSON.parse(event.data).id ?? id); } catch (e) { /* not JSON: keep the event id */ }
    add(id);
  };
  source.addEventListener("alarm", arrived);  // the stream names its events `alarm`
  source.onmessage = arrived;
}

// A community's page after a risk level change: while a gate has not picked it up, look
// again every few seconds and show when it has (the table is re-read from the page itself).
const pickup = document.getElementById("pickup");
if (pickup && pickup.querySelector("tr.behind")) {
  const refresh = async () => {
    try {
      const r = await fetch(window.location.href, {credentials: "same-origin"});
      if (r.ok) {
        const fresh = new DOMParser().parseFromString(await r.text(), "text/html").getElementById("pickup");
        if (fresh) pickup.replaceChildren(...fresh.childNodes);
      }
    } catch (e) { /* the server is back soon: try again */ }
    if (pickup.querySelector("tr.behind")) window.setTimeout(refresh, 3000);
  };
  window.setTimeout(refresh, 3000);
}
