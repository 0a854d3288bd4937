// tangolab's pages: live values over one event stream per page, writes and commands through the API.
// Every device string goes in with textContent: a status or message with markup stays text.
"use strict";

const tangolab = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const STATES = ["ON", "OFF", "CLOSE", "OPEN", "INSERT", "EXTRACT", "MOVING", "STANDBY", "FAULT", "INIT",
                  "RUNNING", "ALARM", "DISABLE", "UNKNOWN"];

  // -- numbers as the device's format says (%7.3f, %9.2e, %g, %d) --------------------------------
  function formatted(value, format) {
    if (Array.isArray(value) && value.length > 16 && value.every(v => typeof v === "number")) {
      return `${value.length} values, ${formatted(Math.min(...value), format)} … ${formatted(Math.max(...value), format)}`;
    }
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
    if (how === "none") return;  // a page's own handler draws it
    if (how === "image") { if (!update.error) drawImage(element, update.value); return; }
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

  // -- pictures: an image attribute (binned by the service) and an x-y curve ----------------------
  function drawImage(canvas, value) {
    const rows = value && value.image, height = rows ? rows.length : 0, width = height ? rows[0].length : 0;
    if (!width) return;
    const sorted = rows.flat().sort((a, b) => a - b);  // grey from the 1st to the 99.5th percentile
    const low = sorted[Math.floor(0.01 * (sorted.length - 1))], high = sorted[Math.floor(0.995 * (sorted.length - 1))];
    const span = high > low ? high - low : 1;
    canvas.width = width; canvas.height = height;
    const context = canvas.getContext("2d"), picture = context.createImageData(width, height);
    rows.forEach((row, y) => row.forEach((v, x) => {
      const grey = Math.max(0, Math.min(255, Math.round(255 * (v - low) / span))), at = 4 * (y * width + x);
      picture.data.set([grey, grey, grey, 255], at);
    }));
    context.putImageData(picture, 0, 0);
    const info = document.querySelector(`[data-info="${CSS.escape(canvas.dataset.attr)}"]`);
    if (info) info.textContent = `${value.shape[1]} × ${value.shape[0]} pixels (shown ${width} × ${height}), ` +
      `grey from ${formatted(low, "%.1f")} to ${formatted(high, "%.1f")}`;
  }

  function drawCurve(canvas, xs, ys, xLabel, yLabel) {
    const context = canvas.getContext("2d"), width = canvas.width, height = canvas.height;
    const left = 64, right = 12, top = 12, bottom = 40;
    const count = Math.min(xs.length, ys.length);
    context.clearRect(0, 0, width, height);
    context.font = "12px system-ui, sans-serif"; context.fillStyle = "#9aa4b2"; context.strokeStyle = "#2a313c";
    context.strokeRect(left, top, width - left - right, height - top - bottom);
    context.fillText(xLabel, left + (width - left - right) / 2 - 40, height - 6);
    context.save(); context.translate(14, top + (height - top - bottom) / 2 + 30); context.rotate(-Math.PI / 2);
    context.fillText(yLabel, 0, 0); context.restore();
    if (!count) return;
    const bounds = values => { let lo = Math.min(...values), hi = Math.max(...values); if (hi === lo) { lo -= 1; hi += 1; } return [lo, hi]; };
    const [x0, x1] = bounds(xs.slice(0, count)), [y0, y1] = bounds(ys.slice(0, count));
    const px = x => left + (x - x0) / (x1 - x0) * (width - left - right);
    const py = y => height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom);
    context.fillText(tick(x0), left, height - bottom + 14); context.fillText(tick(x1), width - right - 40, height - bottom + 14);
    context.fillText(tick(y1), 4, top + 10); context.fillText(tick(y0), 4, height - bottom);
    if (y0 < 0 && y1 > 0) { context.beginPath(); context.moveTo(left, py(0)); context.lineTo(width - right, py(0)); context.stroke(); }
    context.strokeStyle = "#4aa3ff"; context.lineWidth = 1.2; context.beginPath();
    for (let i = 0; i < count; i++) (i ? context.lineTo : context.moveTo).call(context, px(xs[i]), py(ys[i]));
    context.stroke();
    canvas.dataset.points = String(count);
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
    const rules = document.getElementById("rule-alarms");
    const showNone = () => {
      const list = document.getElementById("alarms");
      if (!alarms.size && !(rules && rules.children.length)) {
        const none = document.createElement("li"); none.className = "none"; none.textContent = "none"; list.append(none);
      }
    };
    onUpdate(update => {
      if (rules && update.name === rules.dataset.attr) {  // the AlarmHandler's: NAME STATE SEVERITY: message
        rules.replaceChildren(...(update.error ? [] : update.value || []).map(line => {
          const m = /^(\S+) (\S+) (\S+): ([\s\S]*)$/.exec(line) || [line, line, "", "", ""];
          const item = document.createElement("li"); item.className = "sev-" + m[3];
          const a = document.createElement("a"); a.href = "/alarms"; a.textContent = m[1];
          item.append(a, ` ${m[2]} ${m[3]}: ${m[4]}`);
          return item;
        }));
        document.querySelectorAll("#alarms .none").forEach(e => e.remove());
        showNone();
        return;
      }
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
      showNone();
    });
    live();
  }

  // -- alarms: the AlarmHandler's table, live; actions for those logged in -----------------------
  const ALARM_ACTIONS = {UNACK: ["acknowledge", "shelve", "disable"], RTNUN: ["acknowledge", "disable"],
                         ACKED: ["shelve", "disable"], ERROR: ["shelve", "disable"], SHLVD: ["unshelve"],
                         OOSRV: ["enable"], DSUPR: ["disable"], NORM: ["disable"]};

  function alarms(handler, loggedIn) {
    // rows are kept and changed in place (the values change every second): a button stays the same
    // element, and a click never lands on a row that was just replaced
    const body = document.getElementById("alarm-rows"), form = document.getElementById("why");
    const rows = new Map();  // alarm name -> {row, cells, badge, actions, state}
    const td = cls => { const cell = document.createElement("td"); cell.className = cls; return cell; };
    const put = (element, text) => { if (element.textContent !== text) element.textContent = text; };
    const newRow = name => {
      const row = document.createElement("tr"); row.dataset.alarm = name;
      const cells = Object.fromEntries(["name", "state", "severity", "since", "message", "values", "actions"]
        .map(cls => [cls, td(cls)]));
      const badge = document.createElement("span"); badge.className = "badge"; cells.state.append(badge);
      put(cells.name, name);
      row.append(...Object.values(cells));
      return {row, cells, badge, state: null};
    };
    const buttons = (name, state) => (loggedIn ? ALARM_ACTIONS[state] || [] : []).map(action => {
      const button = document.createElement("button"); button.type = "button"; button.textContent = action;
      button.dataset.action = action;
      button.onclick = async () => {
        try {
          await api("POST", `/api/alarms/${encodeURIComponent(name)}/${action}`,
                    {why: form.elements.why.value.trim(),
                     seconds: action === "shelve" ? Number(form.elements.seconds.value) : null});
          outcome(form, `${name}: ${action} done`, false);
        } catch (error) { outcome(form, `${name}: ${error.message}`, true); }
      };
      return button;
    });
    onUpdate(update => {
      if (update.name !== body.dataset.attr || update.error) return;
      const table = JSON.parse(update.value);
      const order = table.map(alarm => {
        const entry = rows.get(alarm.name) || rows.set(alarm.name, newRow(alarm.name)).get(alarm.name);
        const {row, cells, badge} = entry;
        row.className = `alarm sev-${alarm.severity} state-${alarm.state}`;
        badge.dataset.value = alarm.state; put(badge, alarm.state);
        const shelved = alarm.state === "SHLVD" && alarm.shelved_until ? `\nshelved until ${stamp(alarm.shelved_until)}` : "";
        put(cells.severity, alarm.severity);
        put(cells.since, alarm.since ? stamp(alarm.since) : "");
        put(cells.message, alarm.message + shelved);
        put(cells.values, alarm.values.split(", ").join("\n"));
        if (entry.state !== alarm.state) { cells.actions.replaceChildren(...buttons(alarm.name, alarm.state)); entry.state = alarm.state; }
        return row;
      });
      for (const name of [...rows.keys()]) if (!table.some(alarm => alarm.name === name)) { rows.get(name).row.remove(); rows.delete(name); }
      if (order.some((row, i) => body.children[i] !== row)) body.replaceChildren(...order);  // active ones first
    });
    live();
  }

  function devicePage(device) {
    const curve = document.getElementById("force-curve"), latest = {};
    if (curve) onUpdate(update => {
      if (update.name !== curve.dataset.x && update.name !== curve.dataset.y) return;
      latest[update.name] = Array.isArray(update.value) ? update.value : [];
      drawCurve(curve, latest[curve.dataset.x] || [], latest[curve.dataset.y] || [], "distance (nm)", "force (pN)");
    });
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
    live([`${device}/state`, `${device}/status`, ...(curve ? [curve.dataset.x, curve.dataset.y] : [])]);
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

  return {dashboard, devicePage, plots, messages, alarms, supervisor, logout, formatted, STATES};
})();
