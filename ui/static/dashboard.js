// rackseed dashboard: live updates over server-sent events. Everything it learns is written with textContent or
// attributes, never as HTML, and its settings come from data- attributes on <body>.
'use strict';
(function () {
  var body = document.body;
  var eventsUrl = body.getAttribute('data-events-url');
  if (!eventsUrl || typeof EventSource === 'undefined') return;
  var pageNode = body.getAttribute('data-page-node');
  var statusEl = document.getElementById('live-status');
  var MAX_EVENT_ROWS = 200;

  // Exposed for tests and curious operators: how many updates arrived, and the last event id seen.
  var live = { open: false, updates: 0, lastEventId: Number(body.getAttribute('data-after')) || 0 };
  window.rackseedLive = live;

  function setStatus(kind, text) {
    if (!statusEl) return;
    statusEl.className = 'live live-' + kind;
    statusEl.textContent = text;
  }

  function cellsFor(name) {
    return document.querySelectorAll('[data-node="' + CSS.escape(name) + '"]');
  }

  function paint(el, view) {
    var stale = [];
    el.classList.forEach(function (c) { if (c.indexOf('state-') === 0) stale.push(c); });
    stale.forEach(function (c) { el.classList.remove(c); });
    el.classList.add(view.stateClass);
    el.classList.toggle('reimage', view.reimageRequested);
    el.setAttribute('data-state', view.state);
    el.title = view.name + ': ' + view.detail;
    var detail = el.querySelector('.detail');
    if (detail) detail.textContent = view.detail;
    if (el.classList.contains('badge')) {
      var label = el.querySelector('.name');
      if (label) label.textContent = view.state;
    }
  }

  // A machine the page has not drawn (just discovered, or added to the inventory since): add a cell for it.
  function addCell(view) {
    var box = document.getElementById(view.inInventory ? 'unracked' : 'discovered');
    if (!box) return;
    var a = document.createElement('a');
    a.className = 'node';
    a.setAttribute('data-node', view.name);
    a.href = eventsUrl.replace(/\/events$/, '/nodes/') + encodeURIComponent(view.name);
    var name = document.createElement('span');
    name.className = 'name';
    name.textContent = view.name;
    var detail = document.createElement('span');
    detail.className = 'detail';
    a.appendChild(name);
    a.appendChild(detail);
    box.appendChild(a);
    paint(a, view);
  }

  function addEventRow(e) {
    var table = document.getElementById('events');
    var tbody = table && table.tBodies[0];
    if (!tbody || tbody.querySelector('tr[data-event-id="' + e.id + '"]')) return;
    var tr = document.createElement('tr');
    tr.setAttribute('data-event-id', String(e.id));
    [String(e.id), e.at, e.type, e.description].forEach(function (text, i) {
      var td = document.createElement('td');
      if (i === 0) td.className = 'num';
      td.textContent = text;
      tr.appendChild(td);
    });
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > MAX_EVENT_ROWS) tbody.deleteRow(tbody.rows.length - 1);
  }

  function showProgress(p) {
    var bar = document.getElementById('download-bar');
    var text = document.getElementById('download-text');
    if (bar) {
      bar.hidden = false;
      bar.value = typeof p.percent === 'number' ? p.percent : 0;
    }
    if (text) text.textContent = p.text + ' (' + p.atText + ')';
  }

  function onNode(msg) {
    var data = JSON.parse(msg.data);
    live.updates++;
    if (msg.lastEventId) live.lastEventId = Number(msg.lastEventId);
    if (data.view) {
      var cells = cellsFor(data.view.name);
      if (cells.length === 0 && !pageNode) addCell(data.view);
      cells.forEach(function (el) { paint(el, data.view); });
    }
    if (pageNode && data.node === pageNode) {
      if (data.view) {
        var detail = document.querySelector('[data-node-detail]');
        if (detail) detail.textContent = data.view.detail;
        var state = document.querySelector('[data-node-state]');
        if (state) state.textContent = data.view.state;
      }
      addEventRow(data.event);
      if (data.progress) showProgress(data.progress);
    }
  }

  function onSummary(msg) {
    var s = JSON.parse(msg.data);
    document.querySelectorAll('[data-summary-state]').forEach(function (el) {
      var n = s.byState[el.getAttribute('data-summary-state')];
      if (typeof n === 'number') el.textContent = String(n);
    });
    document.querySelectorAll('[data-summary]').forEach(function (el) {
      var n = s[el.getAttribute('data-summary')];
      if (typeof n === 'number') el.textContent = String(n);
    });
  }

  // On reconnect the browser sends Last-Event-ID itself, which the server prefers over ?after=.
  var source = new EventSource(eventsUrl + '?after=' + encodeURIComponent(String(live.lastEventId)));
  source.addEventListener('open', function () {
    live.open = true;
    setStatus('open', 'live');
  });
  source.addEventListener('error', function () {
    live.open = false;
    // CLOSED means the server refused the stream (the session expired): only a new login helps.
    if (source.readyState === EventSource.CLOSED) setStatus('closed', 'disconnected: reload the page');
    else setStatus('connecting', 'reconnecting');
  });
  source.addEventListener('node', onNode);
  source.addEventListener('summary', onSummary);
})();
