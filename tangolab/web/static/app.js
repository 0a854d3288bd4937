// tangolab's pages: live values over one event stream per page, writes and commands through the API.
// Every device string goes in with textContent: a status or message with markup stays text.
"use strict";

const tangolab = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const STATES = ["ON", "OFF", "CLOSE", "OPEN", "INSERT", "EXTRACT", "MOVING", "STANDBY", "FAULT", "INIT",
                  "RUNNING", "ALARM", "DISABLE", "UNKNOWN"];

  // -- numbers as the device's format says (%7.3f, %9.2e, %g, %d) --------------------------------
  function formatted(value, format) {
    if (typeof value !== "number") return value === null || value === undefined ? "" :
      typeof value === "object" ? JSON.stringify(value) : String(value);
    const m = /^%[-+ 0#]*\d*(?:\.(\d+))?(l?[dfeEgG])$/.exec(format || "");
    if (!m) return Number.isInteger(value) ? String(value) : value.toPrecision(6).replace(/\.?0+$/, "");
    const digits = m[1] === undefined ? 6 : Number(m[1]);
    switch (m[2].slice(-1)) {
      case "d": return Math.round(value).toString();
      case "f": return value.toFixed(digits);
      case "e": case "E": return value.toExponential(digits);
      default: return Number(value.toPrecision(Math.max(digits, 1))).toString();
    }
  }

  // -- the live stream: one EventSource for every data-attr of the page ---------------------------
  const handlers = [];
  function onUpdate(handler) { handlers.push(handler); }

  function live(extra = []) {
    const names = new Set(extra);
    document.querySelectorAll("[data-attr]").forEach(e => names.add(e.dataset.attr));
    if (!names.size) return;
    const link = document.getElementById("link");
    const source = new EventSource("/api/stream?attributes=" + encodeURIComponent([...names].join(",")));
    addEventListener("pagehide", () => source.close());  // leaving: the service ends what nobody watches
    source.onopen = () => { link.className = "link up"; link.textContent = "live"; };
    source.onerror = () => { link.className = "link down"; link.textContent = "reconnecting"; };
    source.onmessage = message => {
      for (const update of JSON.parse(message.data)) {
        document.querySelectorAll(`[data-attr="${CSS.escape(update.name)}"]`).forEach(e => show(e, update));
        handlers.forEach(h => h(update));
      }
    };
  }

  function show(element, update) {
    const how = element.dataset.show;
    element.classList.toggle("stale", !!update.error);
    element.title = update.error || `${stamp(update.time)} ${update.quality}`;
    if (how === "bar") { element.style.width = `${Math.max(0, Math.min(100, Number(update.value) || 0))}%`; return; }
    if (update.error) {
      if (element.classList.contains("state")) element.textContent = "NO ANSWER";
      element.dataset.quality = "INVALID";
      return;
    }
    element.dataset.quality = update.quality;
    element.textContent = how === "text" ? String(update.value ?? "") : formatted(update.value, element.dataset.format);
    if (element.classList.contains("badge")) element.dataset.value = String(update.value);
  }

  // -- answers of the API ------------------------------------------------------------------------
  async function api(method, url, body) {
    const reply = await fetch(url, {method, headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
                                    body: body === undefined ? undefined : JSON.stringify(body)});
    const data = await reply.json().catch(() => ({}));
    if (!reply.ok) throw new Error(data.message || `${reply.status} ${reply.statusText}`);
    return data;
  }

  function outcome(form, text, failed) {
    const span = form.querySelector(".outcome");
    span.textContent = text;
    span.className = "outcome " + (failed ? "refused" : "done");
  }

  function typed(text) {  // numbers and JSON as such, other words as text (enum labels, true/false)
    try { return JSON.parse(text); } catch { return text; }
  }

  // -- pages -------------------------------------------------------------------------------------
  function dashboard() {
    const alarms = new Map();
    onUpdate(update => {
      if (!update.name.endsWith("/state")) return;
      const device = update.name.slice(0, -"/state".length);
      const answer = document.querySelector(`[data-answer="${CSS.escape(device)}"]`);
      const row = document.querySelector(`tr.device[data-device="${CSS.escape(device)}"]`);
      if (row) row.classList.toggle("away", !!update.error);
      if (answer) answer.textContent = update.error ? "server does not answer" : "";
      if (update.error) alarms.set(device, "does not answer");
      else if (["ALARM", "FAULT"].includes(update.value)) alarms.set(device, update.value);
      else alarms.delete(device);
      const list = document.getElementById("alarms");
      list.replaceChildren(...[...alarms].sort().map(([name, what]) => {
        const item = document.createElement("li");
        const a = document.createElement("a");
        a.href = `/devices/${name}`; a.textContent = name;
        item.append(a, " " + what);
        return item;
      }));
      if (!alarms.size) { const none = document.createElement("li"); none.className = "none"; none.textContent = "none"; list.append(none); }
    });
    live();
  }

  function devicePage(device) {
    onUpdate(update => {
      if (update.name === `${device}/state`) {
        document.body.classList.toggle("away", !!update.error);
        document.querySelector("[data-answer]").textContent = update.error ? update.error : "";
      }
    });
    document.querySelectorAll("form.write").forEach(form => form.addEventListener("submit", async event => {
      event.preventDefault();
      const value = form.elements.value.value;
      outcome(form, "…", false);
      try {
        const reading = await api("PUT", `/api/devices/${form.dataset.device}/attributes/${form.dataset.attribute}`,
                                  {value: typed(value)});
        outcome(form, "read back " + formatted(reading.value, ""), false);
      } catch (error) { outcome(form, error.message, true); }
    }));
    document.querySelectorAll("form.call").forEach(form => form.addEventListener("submit", async event => {
      event.preventDefault();
      const input = form.elements.argument;
      outcome(form, "…", false);
      try {
        const done = await api("POST", `/api/devices/${form.dataset.device}/commands/${form.dataset.command}`,
                               input ? {argument: typed(input.value)} : {});
        outcome(form, done.result === null ? "done" : JSON.stringify(done.result), false);
      } catch (error) { outcome(form, error.message, true); }
    }));
    live([`${device}/state`, `${device}/status`]);
  }

  // -- plots: history from the archive, then live ------------------------------------------------
  const COLOURS = ["#4aa3ff", "#ff9f43", "#2ed573", "#ff6b81", "#a29bfe", "#feca57", "#48dbfb", "#c8d6e5"];
  const WINDOWS = {s: 1, m: 60, h: 3600, d: 86400, w: 604800};
  const seconds = window_ => { const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(window_); return m ? m[1] * WINDOWS[m[2]] : 600; };

  function plots() {
    const all = [];
    document.querySelectorAll("[data-plot]").forEach(section => all.push(plot(section, JSON.parse(section.dataset.plot))));
    const names = all.flatMap(p => p.attributes);
    onUpdate(update => all.forEach(p => p.add(update)));
    live(names);
  }

  function tick(v) {  // 2e-6 rather than 0 on a pressure axis
    if (v === null || v === undefined) return "";
    const size = Math.abs(v);
    return size !== 0 && (size < 1e-3 || size >= 1e5) ? v.toExponential(0) : String(Number(v.toPrecision(4)));
  }

  function plot(section, spec) {
    const span = seconds(spec.window);
    const head = document.createElement("div"); head.className = "plothead";
    const title = document.createElement("h2"); title.textContent = spec.name;
    const logY = document.createElement("label"); const box = document.createElement("input");
    box.type = "checkbox"; box.checked = !!spec.log_y; logY.append(box, " log y");
    const reset = document.createElement("button"); reset.textContent = "Reset"; reset.type = "button";
    head.append(title, logY, reset);
    const area = document.createElement("div");
    section.append(head, area);
    const series = spec.attributes.map(() => ({times: [], values: []}));
    let following = true, chart = null;
    const data = () => {
      const times = [...new Set(series.flatMap(s => s.times))].sort((a, b) => a - b);
      // each value holds until the next (the archive and events carry changes only): a constant is a flat line
      const now = Date.now() / 1000;
      if (times.length && times[times.length - 1] < now) times.push(now);
      return [times, ...series.map(s => {
        const at = new Map(s.times.map((t, i) => [t, s.values[i]]));
        let held = null;
        return times.map(t => (held = at.has(t) ? at.get(t) : held));
      })];
    };
    const build = () => {
      if (chart) chart.destroy();
      chart = new uPlot({
        width: Math.max(300, area.clientWidth || section.clientWidth - 24), height: 260, scales: {x: {time: true}, y: {distr: box.checked ? 3 : 1}},
        series: [{}, ...spec.attributes.map((name, i) => ({label: name, stroke: COLOURS[i % COLOURS.length], width: 1.5,
                                                               spanGaps: false, points: {show: false}}))],
        axes: [{stroke: "#9aa4b2", grid: {stroke: "#2a313c"}},
               {stroke: "#9aa4b2", grid: {stroke: "#2a313c"}, size: 70, values: (u, ticks) => ticks.map(tick)}],
        cursor: {drag: {x: true, y: false}},
        hooks: {setSelect: [() => { following = false; }]},
      }, data(), area);
    };
    box.addEventListener("change", build);
    reset.addEventListener("click", () => { following = true; build(); });
    Promise.all(spec.attributes.map((name, i) => fetch(`/api/history?attribute=${encodeURIComponent(name)}&since=${span}s`)
      .then(r => r.ok ? r.json() : {time: [], value: []}).then(h => {
        h.time.forEach((t, k) => { if (typeof h.value[k] === "number") { series[i].times.push(t); series[i].values.push(h.value[k]); } });
      }))).finally(build);
    let pending = false;
    return {
      attributes: spec.attributes,
      add(update) {
        const i = spec.attributes.indexOf(update.name);
        if (i < 0 || typeof update.value !== "number") return;
        const s = series[i];
        if (s.times.length && update.time <= s.times[s.times.length - 1]) return;
        s.times.push(update.time); s.values.push(update.value);
        const oldest = update.time - span;
        while (s.times.length && s.times[0] < oldest && following) { s.times.shift(); s.values.shift(); }
        if (!pending && chart && following) {
          pending = true;
          requestAnimationFrame(() => { pending = false; chart.setData(data()); });
        }
      },
    };
  }

  // -- messages ----------------------------------------------------------------------------------
  const pad = n => String(n).padStart(2, "0");
  function stamp(epoch) {  // local time as a lab log writes it: 2026-05-01 14:03:07
    const d = new Date(epoch * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function messageRow(time, level, source, text) {
    const row = document.createElement("tr");
    row.className = "level-" + String(level).toLowerCase();
    for (const cell of [time, level, source, text]) {
      const td = document.createElement("td"); td.textContent = cell; row.append(td);
    }
    return row;
  }

  function messages() {
    const form = document.getElementById("filter"), rows = document.getElementById("messages");
    const load = async () => {
      const query = new URLSearchParams();
      for (const key of ["source", "level", "since", "until"]) if (form.elements[key].value) query.set(key, form.elements[key].value);
      try {
        const found = await api("GET", "/api/messages?" + query);
        rows.replaceChildren(...found.reverse().map(m => messageRow(stamp(m.time), m.level, m.source, m.text)));
      } catch (error) { rows.replaceChildren(messageRow("", "error", "web", error.message)); }
    };
    form.addEventListener("submit", event => { event.preventDefault(); load(); });
    document.getElementById("at").addEventListener("click", async () => {
      const when = form.elements.at.value || "now";
      const then = document.getElementById("then");
      then.hidden = false;
      document.getElementById("then-title").textContent = "The lab at " + when;
      try {
        const state = await api("GET", "/api/state_at?time=" + encodeURIComponent(when));
        document.getElementById("then-rows").replaceChildren(...Object.entries(state).map(([name, r]) =>
          messageRow(stamp(r.time), r.quality, name, JSON.stringify(r.value))));
      } catch (error) { document.getElementById("then-rows").replaceChildren(messageRow("", "error", "web", error.message)); }
    });
    onUpdate(update => {
      const m = /^(\S+ \S+) (\S+) ([^:]*): ([\s\S]*)$/.exec(update.value || "");
      const level = form.elements.level.value, source = form.elements.source.value;
      if (m && (!level || level.toLowerCase() === m[2].toLowerCase()) && (!source || source === m[3])) rows.prepend(messageRow(m[1], m[2], m[3], m[4]));
    });
    load().then(() => live(["lab/archiver/1/lastmessage"]));
  }

  // -- supervisor --------------------------------------------------------------------------------
  function supervisor(loggedIn) {
    const body = document.getElementById("programs");
    const refresh = async () => {
      try {
        const programs = await api("GET", "/api/supervisor");
        body.replaceChildren(...programs.map(p => {
          const row = document.createElement("tr");
          row.className = "phase-" + p.phase;
          for (const [cell, cls] of [[p.name, ""], [p.level, ""], [p.phase, "phase"], [p.pid || "-", "num"],
                                     [`${Math.round(p.uptime)} s`, "num"], [p.restarts, "num"]]) {
            const td = document.createElement("td"); td.textContent = cell; td.className = cls; row.append(td);
          }
          const actions = document.createElement("td");
          if (loggedIn && p.level > 0) for (const action of ["start", "stop", "restart"]) {
            const button = document.createElement("button"); button.textContent = action;
            button.onclick = async () => { try { await api("POST", `/api/supervisor/${action}`, {program: p.name}); } catch (e) { alert(e.message); } refresh(); };
            actions.append(button);
          }
          row.append(actions);
          return row;
        }));
      } catch (error) { body.replaceChildren(messageRow("", "error", "", error.message)); }
    };
    refresh();
    setInterval(refresh, 2000);
  }

  function logout(form) {
    fetch("/logout", {method: "POST", headers: {"X-CSRF-Token": csrf()}}).then(() => location.assign("/"));
    return false;
  }

  return {dashboard, devicePage, plots, messages, supervisor, logout, formatted, STATES};
})();
