// vlm-batch web UI: plain JavaScript, no build step. Hash routes:
//   #/  jobs · #/job/NAME  runs grid, plan, backfill · #/run/ID  run detail · #/run/ID/results  gallery ·
//   #/run/ID/document/ITEM  a document's pages · #/run/ID/item/ITEM  one item's answers across runs · #/playground
// Everything shown comes from the URL, the API or the database, so none of it is trusted: markup is only
// ever built with the html`` tag below, which escapes every value put into it, and only html`` results
// reach innerHTML (through show()). The Content-Security-Policy forbids inline script and style as a
// second line of defence, so nothing here uses style="" or on...="" attributes.
'use strict';

const view = document.getElementById('view');
const STATES = ['success', 'running', 'queued', 'up_for_retry', 'failed', 'stopped'];
const JOB_NAME = /^[A-Za-z0-9_.-]{1,100}$/;   // as the job file loader allows
const RUN_ID = /^[0-9]{1,18}$/;
const ITEM_ID = /^[0-9]{1,18}$/;
const DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;
let timer = null;
let navigation = 0;   // counts renders of a page: route() takes the next number

class Html {
  constructor(text) { this.text = text; }
}
function escapeValue(v) {
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(escapeValue).join('');
  if (v === null || v === undefined || v === false) return '';
  return String(v).replace(/[&<>"'`]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' }[c]));
}
/** Markup from a template literal: every ${value} is escaped unless it is itself html`` (arrays are joined). */
function html(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => { out += escapeValue(v) + strings[i + 1]; });
  return new Html(out);
}
function show(el, fragment) {
  if (!(fragment instanceof Html)) throw new TypeError('only html`` markup may be shown');
  el.innerHTML = fragment.text;
}
/**
 * Draws a page unless a later render has begun since this one (turn) started: a page's fetches can answer
 * after the user went elsewhere, and a stale page must not draw over the new one. False: stop, draw nothing.
 */
function drawPage(turn, fragment) {
  if (turn !== navigation) return false;
  show(view, fragment);
  return true;
}
function csrf() {
  const m = document.cookie.match(/(?:^|; )XSRF-TOKEN=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : '';
}
async function api(path, options = {}) {
  const opts = { ...options, headers: { ...(options.headers || {}) } };
  if (opts.method && opts.method !== 'GET') opts.headers['X-XSRF-TOKEN'] = csrf();
  const r = await fetch('api/' + path, opts);
  const body = (r.headers.get('content-type') || '').includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new Error(body && body.detail ? body.detail : 'HTTP ' + r.status);
  return body;
}
function badge(state) { return html`<span class="badge s-${state}">${state}</span>`; }
function when(iso) { return iso ? new Date(iso).toLocaleString() : '—'; }
function fail(e) {
  const p = document.createElement('p');
  p.className = 'error';
  p.id = 'error';
  p.textContent = e && e.message ? e.message : String(e);
  view.prepend(p);
}
function notFound(turn, what) {
  drawPage(turn, html`<p id="not-found">Not found: <code>${what}</code></p>`);
}

// ---------- jobs ----------
async function jobsPage(turn) {
  const jobs = await api('jobs');
  if (!drawPage(turn, html`<h1>Jobs</h1>
    <table id="jobs"><tr><th>Job</th><th>Schedule</th><th>Next run</th><th>Last run</th><th>Tasks</th><th>Run now</th></tr>
    ${jobs.map(j => j.error ? html`<tr><td>${j.name}</td><td colspan="5" class="error">${j.error}</td></tr>` : html`
      <tr data-job="${j.name}">
        <td><a class="job-link" href="#/job/${encodeURIComponent(j.name)}">${j.name}</a></td>
        <td>${j.schedule ? html`<code>${j.schedule}</code> <span class="muted">${j.timezone}${j.catchup ? ', catchup' : ''}, max ${j.maxActiveRuns} active${j.retries ? ', ' + j.retries + ' retries' : ''}</span>` : html`<span class="muted">manual</span>`}</td>
        <td class="next-run">${j.nextRunAt ? when(j.nextRunAt) : '—'}</td>
        <td>${j.lastRun ? html`${badge(j.lastRun.state)} ${j.lastRun.logicalDate}` : html`<span class="muted">no runs yet</span>`}</td>
        <td>${j.tasks.join(', ')}</td>
        <td><input type="date" class="trigger-date"> <button class="trigger">Trigger</button></td>
      </tr>`)}
    </table>`)) return;
  view.querySelectorAll('button.trigger').forEach(b => b.onclick = async () => {
    const tr = b.closest('tr');
    const date = tr.querySelector('.trigger-date').value;
    try {
      await api(`jobs/${encodeURIComponent(tr.dataset.job)}/trigger` + (date ? `?date=${encodeURIComponent(date)}` : ''), { method: 'POST' });
      location.hash = '#/job/' + encodeURIComponent(tr.dataset.job);
    } catch (e) { fail(e); }
  });
}

// ---------- one job: grid of runs by logical date ----------
async function jobPage(turn, name) {
  const [job, runs] = await Promise.all([api('jobs/' + encodeURIComponent(name)), api(`jobs/${encodeURIComponent(name)}/runs?limit=90`)]);
  const ordered = [...runs].reverse();
  const runHref = r => r.runId != null && RUN_ID.test(String(r.runId)) ? '#/run/' + r.runId : '#/job/' + encodeURIComponent(name);
  if (!drawPage(turn, html`<h1>${job.name}</h1>
    <p class="muted">${job.schedule ? html`cron <code>${job.schedule}</code> (${job.timezone}) · next run ${when(job.nextRunAt)}` : 'no schedule: runs when triggered'}
      · tasks ${job.tasks.join(', ')}</p>
    <div class="grid" id="grid">${ordered.length ? ordered.map(r => html`<a class="cell s-${r.state}" title="${r.logicalDate + (r.params ? ' ' + r.params : '') + ': ' + r.state}"
        href="${runHref(r)}" data-date="${r.logicalDate}"></a>`) : html`<span class="muted">no runs yet</span>`}</div>
    <div class="legend">${STATES.map(s => html`<span><i class="s-${s}"></i>${s}</span>`)}</div>
    <h2>Plan and trigger</h2>
    <form class="row" id="plan-form"><label>logical date <input type="date" id="plan-date" value="${ledger.planDates[name] || ledger.today}"></label>
      <button type="button" class="secondary" id="plan-refresh">Plan</button> <button type="button" id="plan-trigger">Trigger</button></form>
    <div id="plan" data-job="${name}"></div>
    <h2>Backfill</h2>
    <form class="row" id="backfill-form">
      <label>from <input type="date" id="backfill-from" required></label>
      <label>to <input type="date" id="backfill-to" required></label>
      <label>reprocess <select id="backfill-mode">
        <option value="none">none: skip dates that have a run</option>
        <option value="failed">failed: also resume failed runs</option>
        <option value="completed">completed: also rerun completed runs</option></select></label>
      <button id="backfill-go">Backfill</button>
      <span class="muted">at most ${job.maxActiveRuns} run${job.maxActiveRuns === 1 ? '' : 's'} at once · ${job.schedule ? 'the runs of the schedule' : 'one run per day'}</span>
    </form>
    <div id="backfill-result"></div>
    <h2>Runs</h2>
    <table id="runs"><tr><th>Logical date</th><th>State</th><th>Trigger</th><th>Attempt</th><th>Images</th><th>Started</th><th>Ended</th><th></th></tr>
    ${runs.map(r => html`<tr data-date="${r.logicalDate}" data-params="${r.params}">
      <td>${r.runId ? html`<a class="run-link" href="${runHref(r)}">${r.logicalDate}</a>` : r.logicalDate} <span class="muted">${r.params}</span></td>
      <td>${badge(r.state)}${r.lastError ? html`<div class="error">${r.lastError}</div>` : ''}${r.nextAttemptAt ? html`<div class="muted">retry at ${when(r.nextAttemptAt)}</div>` : ''}</td>
      <td>${r.trigger || 'cli'}</td><td>${r.attempt ?? '—'}</td>
      <td>${r.done} done, ${r.failed} failed, ${r.pending} pending</td>
      <td>${r.startedAt || '—'}</td><td>${r.endedAt || '—'}</td>
      <td>${['failed', 'stopped'].includes(r.state) ? html`<button class="restart">Restart</button>` : ''}
          ${['running', 'queued', 'up_for_retry'].includes(r.state) && r.scheduleState ? html`<button class="secondary stop">Stop</button>` : ''}</td>
    </tr>`)}</table>`)) return;
  const act = what => async ev => {
    const tr = ev.target.closest('tr');
    try {
      await api(`jobs/${encodeURIComponent(name)}/runs/${encodeURIComponent(tr.dataset.date)}/${what}?params=${encodeURIComponent(tr.dataset.params)}`, { method: 'POST' });
      route();
    } catch (e) { fail(e); }
  };
  view.querySelectorAll('button.restart').forEach(b => b.onclick = act('restart'));
  view.querySelectorAll('button.stop').forEach(b => b.onclick = act('stop'));
  wireLedgerForms(name);
  if (runs.some(r => ['running', 'queued', 'up_for_retry', 'stopping'].includes(r.state))) refreshLater(3000);
}

// ---------- the item ledger on a job's page: plan before Trigger, backfill ----------
// The plan lists the job's whole source and hashes every item, so it is computed only when asked (Plan);
// the page's re-renders (every few seconds while a run is active) show the last plan received instead.
const ledger = { today: new Date().toISOString().slice(0, 10), planDates: {}, plan: null, planAsked: null, planError: null, planTicker: null };

function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  return Math.floor(s / 3600) + ' h ' + Math.floor(s % 3600 / 60) + ' min';
}

function took(ms) {
  return ms < 1000 ? ms + ' ms' : ms < 60000 ? (ms / 1000).toFixed(1) + ' s' : duration(ms / 1000);
}

function planAge(held) {
  const s = (held.p.ageMillis + Date.now() - held.receivedAt) / 1000;
  return s < 1 ? 'just now' : duration(s) + ' ago';
}

function showPlanHint(box) {
  show(box, html`<p class="muted" id="plan-hint">Plan lists this date's source and reads every item to say what a run
    would ask, reuse and cost; on a large source that takes a while. Trigger does not need it.</p>`);
}

async function showPlan(name) {
  const date = document.getElementById('plan-date').value;
  if (date && !DATE.test(date)) return show(document.getElementById('plan'), html`<p class="error" id="plan-error">the date must be YYYY-MM-DD</p>`);
  const asked = { job: name, date };
  ledger.planAsked = asked;
  ledger.planError = null;
  showPlanBox(name);
  try {
    const p = await api(`jobs/${encodeURIComponent(name)}/plan` + (date ? `?date=${encodeURIComponent(date)}` : ''));
    ledger.plan = { job: name, date, p, receivedAt: Date.now() };
  } catch (e) {
    ledger.planError = { job: name, date, message: e.message };
  } finally {
    if (ledger.planAsked === asked) ledger.planAsked = null;
  }
  showPlanBox(name);
}

/** What the plan box of a job's page holds: the plan being computed, else the last one received or its error, else the hint. */
function showPlanBox(name) {
  const box = document.getElementById('plan'), input = document.getElementById('plan-date');
  if (!box || !input || box.dataset.job !== name) return;
  const mine = x => x && x.job === name && x.date === input.value;
  const button = document.getElementById('plan-refresh');
  button.disabled = mine(ledger.planAsked);
  if (mine(ledger.planAsked)) show(box, html`<p class="muted" id="plan-busy">computing the plan: listing and reading the source…</p>`);
  else if (mine(ledger.planError)) show(box, html`<p class="error" id="plan-error">${ledger.planError.message}</p>`);
  else if (mine(ledger.plan)) renderPlan(box, ledger.plan);
  else showPlanHint(box);
}

function renderPlan(box, held) {
  const p = held.p;
  show(box, html`<div class="stats" id="plan-stats">
      <div class="stat"><b id="plan-items">${p.items}</b>items</div>
      <div class="stat"><b id="plan-reused">${p.reusedItems}</b>reused</div>
      <div class="stat"><b id="plan-new">${p.newItems}</b>new</div>
      <div class="stat"><b id="plan-requests">${p.requests}</b>requests</div>
      <div class="stat"><b id="plan-gpu">${p.estimatedSeconds == null ? '—' : duration(p.estimatedSeconds)}</b>estimated GPU time</div>
    </div>
    <p class="muted" id="plan-note">${p.estimatedSeconds == null
      ? 'no rate measured yet: no earlier completed run sent requests to this endpoint and model'
      : html`at ${Number(p.secondsPerRequest).toFixed(3)} s per request, measured on the last ${p.rateRuns} run${p.rateRuns === 1 ? '' : 's'}`}
      · ${p.endpoint} · model ${p.model}${p.reuse ? '' : ' · reuse is off (run.reuse: false)'}${p.unreadableItems ? html` · <span class="error">${p.unreadableItems} unreadable</span>` : ''}</p>
    <p class="muted" id="plan-computed">plan of ${p.date} computed <span id="plan-age">${planAge(held)}</span>
      in <span id="plan-took">${took(p.computedMillis)}</span> · kept ${p.keptSeconds} s, then Plan lists the source again</p>`);
  clearInterval(ledger.planTicker);
  ledger.planTicker = setInterval(() => {
    const age = document.getElementById('plan-age');
    if (!age || ledger.plan !== held) return clearInterval(ledger.planTicker);
    age.textContent = planAge(held);
  }, 1000);
}

function wireLedgerForms(name) {
  const planDate = document.getElementById('plan-date');
  document.getElementById('plan-refresh').onclick = () => showPlan(name);
  planDate.onchange = () => {
    ledger.planDates[name] = planDate.value;
    showPlanBox(name);
  };
  document.getElementById('plan-trigger').onclick = async () => {
    const date = document.getElementById('plan-date').value;
    try {
      await api(`jobs/${encodeURIComponent(name)}/trigger` + (date ? `?date=${encodeURIComponent(date)}` : ''), { method: 'POST' });
      route();
    } catch (e) { fail(e); }
  };
  document.getElementById('backfill-form').onsubmit = async ev => {
    ev.preventDefault();
    const q = new URLSearchParams({ from: document.getElementById('backfill-from').value,
      to: document.getElementById('backfill-to').value, reprocess: document.getElementById('backfill-mode').value });
    const box = document.getElementById('backfill-result');
    try {
      const r = await api(`jobs/${encodeURIComponent(name)}/backfill?${q}`, { method: 'POST' });
      ledger.lastBackfill = r;
      showBackfill(box, r);
      refreshLater(1500);
    } catch (e) {
      show(box, html`<p class="error" id="backfill-error">${e.message}</p>`);
    }
  };
  if (ledger.lastBackfill && ledger.lastBackfill.job === name) showBackfill(document.getElementById('backfill-result'), ledger.lastBackfill);
  planDate.onchange();
}

function showBackfill(box, r) {
  show(box, html`<p id="backfill-summary">${r.from} … ${r.to} (reprocess ${r.reprocess}): ${r.queued} queued, ${r.skipped} skipped</p>
    <table id="backfill-runs"><tr><th>Logical date</th><th>Action</th><th>Was</th><th>Why skipped</th></tr>
    ${r.runs.map(x => html`<tr data-date="${x.logicalDate}"><td>${x.logicalDate} <span class="muted">${x.params}</span></td>
      <td class="action">${x.action}</td><td>${x.previousState ? badge(x.previousState) : html`<span class="muted">no run</span>`}</td>
      <td class="muted">${x.reason || ''}</td></tr>`)}</table>`);
}

// ---------- one run: progress, steps, failures ----------
async function runPage(turn, id) {
  const r = await api('runs/' + id);
  const c = r.counts;
  const pct = n => c.total ? (100 * n / c.total).toFixed(1) : 0;
  if (!drawPage(turn, html`<h1><a href="#/job/${encodeURIComponent(r.job)}">${r.job}</a> · ${r.logicalDate} ${r.params} ${badge(r.state)}</h1>
    <div class="progress" id="progress" title="${c.done} done, ${c.failed} failed of ${c.total}">
      <div class="done"></div><div class="failed"></div></div>
    <div class="stats">
      <div class="stat"><b id="count-done">${c.done}</b>done</div>
      <div class="stat"><b id="count-failed">${c.failed}</b>failed</div>
      <div class="stat"><b id="count-pending">${c.pending}</b>pending</div>
      ${archiveStats(r.archives, c.total)}
      <div class="stat"><b>${Number(r.imagesPerSecond ?? 0).toFixed(2)}</b>images/s</div>
      <div class="stat"><b>${r.elapsedSeconds ? Number(r.elapsedSeconds).toFixed(1) + ' s' : '—'}</b>elapsed</div>
    </div>
    ${r.ledger ? html`<div class="stats" id="ledger">
      <div class="stat"><b id="count-reused">${r.ledger.reused}</b>reused from earlier runs</div>
      <div class="stat"><b id="count-asked">${r.ledger.asked}</b>new (asked)</div>
      <div class="stat"><b id="count-ledger-failed">${r.ledger.failed}</b>failed</div>
      ${r.state === 'success' && r.ledger.failed > 0 ? html`<div class="stat"><button id="retry-failed">Retry failed</button></div>` : ''}
    </div>
    ${r.ledger.attempts.length ? html`<h2>Retry attempts</h2><table id="attempts"><tr><th>Attempt</th><th>Status</th><th>Task</th><th>Started</th><th>Ended</th></tr>
      ${r.ledger.attempts.map(a => html`<tr><td>${a.attempt}</td><td>${a.status || 'queued'}</td><td>${a.task || 'all tasks'}</td>
        <td>${a.startedAt || ''}</td><td>${a.endedAt || ''}</td></tr>`)}</table>` : ''}` : ''}
    <p><a id="gallery-link" href="#/run/${id}/results">Results gallery →</a></p>
    ${r.schedule && r.schedule.lastError ? html`<p class="error">${r.schedule.lastError}</p>` : ''}
    <h2>Steps (latest execution)</h2>
    <table id="steps"><tr><th>Step</th><th>Status</th><th>Read</th><th>Written</th><th>Commits</th><th>Rollbacks</th><th>Started</th><th>Ended</th></tr>
      ${r.steps.map(s => html`<tr><td>${s.name}</td><td>${s.status}</td><td>${s.read}</td><td>${s.written}</td><td>${s.commits}</td>
        <td>${s.rollbacks}</td><td>${s.startedAt || ''}</td><td>${s.endedAt || ''}</td></tr>`)}</table>
    <h2>Failed items (${c.failed})</h2>
    ${r.failures.length ? html`<table id="failures"><tr><th>Image</th><th>Reason</th></tr>${r.failures.map(f =>
      html`<tr><td><a class="item-link" href="#/run/${id}/item/${encodeURIComponent(f.itemId)}">${f.itemKey}</a></td><td class="error">${f.error}</td></tr>`)}</table>` : html`<p class="muted">none</p>`}
    <h2>Executions</h2>
    <table><tr><th>Execution</th><th>Status</th><th>Started</th><th>Ended</th><th>Exit</th></tr>
      ${r.executions.map(e => html`<tr><td>${e.id}</td><td>${e.status}</td><td>${e.startedAt || ''}</td><td>${e.endedAt || ''}</td>
        <td class="error">${(e.exitMessage || '').slice(0, 400)}</td></tr>`)}</table>`)) return;
  // widths through the CSS object model: the policy allows no style="" attribute
  view.querySelector('#progress .done').style.width = pct(c.done) + '%';
  view.querySelector('#progress .failed').style.width = pct(c.failed) + '%';
  const retry = document.getElementById('retry-failed');
  if (retry) retry.onclick = async () => {
    retry.disabled = true;
    try {
      await api(`jobs/${encodeURIComponent(r.job)}/runs/${encodeURIComponent(r.logicalDate)}/retry?params=${encodeURIComponent(r.params)}`, { method: 'POST' });
      route();
    } catch (e) { retry.disabled = false; fail(e); }
  };
  if (['running', 'queued', 'stopping', 'up_for_retry'].includes(r.state)) refreshLater(2000);
}

// ---------- one item: its answers across attempts and across the runs that held the same bytes ----------
async function itemPage(turn, runId, itemId) {
  const h = await api(`runs/${runId}/items/${itemId}/history`);
  const reusedFrom = a => a.reusedFromRun != null && RUN_ID.test(String(a.reusedFromRun))
    ? html` <span class="muted">reused from <a class="reused-from" href="#/run/${a.reusedFromRun}">run ${a.reusedFromRun}</a></span>` : '';
  const answers = list => list.length ? html`<table class="answers"><tr><th>Task</th><th>Status</th><th>Answer</th><th>Model</th><th>Answered</th></tr>
    ${list.map(a => html`<tr data-task="${a.task}"><td>${a.task}${a.replacedByAttempt != null ? html`<div class="muted">replaced by attempt ${a.replacedByAttempt}</div>` : ''}</td>
      <td>${a.status}</td><td><div class="text">${a.answer ?? ''}</div>${a.error ? html`<div class="error">${a.error}</div>` : ''}${reusedFrom(a)}</td>
      <td class="muted">${a.model || ''}</td><td class="muted">${when(a.answeredAt)}</td></tr>`)}</table>` : html`<p class="muted">none</p>`;
  if (!drawPage(turn, html`<h1><a href="#/run/${runId}">${h.job} · ${h.logicalDate}</a> · <span id="item-key">${h.itemKey}</span></h1>
    <p class="muted">${h.uri} · ${badge(h.status === 'done' ? 'success' : h.status === 'pending' ? 'queued' : 'failed')}
      · content hash <code>${h.contentHash ? h.contentHash.slice(0, 16) + '…' : 'not read yet'}</code></p>
    ${h.error ? html`<p class="error">${h.error}</p>` : ''}
    <h2>Latest answers</h2><div id="answers-now">${answers(h.answers)}</div>
    <h2>Earlier attempts of this run</h2><div id="answers-replaced">${answers(h.replaced)}</div>
    <h2>Other runs with the same bytes (${h.otherRuns.length})</h2>
    ${h.otherRuns.length ? html`<div id="other-runs">${h.otherRuns.map(o => html`<div class="other-run">
      <h3><a href="#/run/${o.runId}/item/${o.itemId}">${o.job} · ${o.logicalDate} · ${o.itemKey}</a> ${badge(o.status === 'done' ? 'success' : o.status === 'pending' ? 'queued' : 'failed')}</h3>
      ${answers(o.answers)}</div>`)}</div>` : html`<p class="muted" id="other-runs">none: no other run held these bytes</p>`}`)) return;
}

/** Items, documents, pages and skipped members, for a run that had documents or archives. */
function archiveStats(a, items) {
  if (!a || !(a.documents || a.membersSkipped)) return '';
  return html`<div class="stat"><b id="count-items">${items}</b>items</div>
      <div class="stat"><b id="count-documents">${a.documents}</b>documents</div>
      <div class="stat"><b id="count-pages">${a.pages}</b>pages</div>
      <div class="stat"><b id="count-skipped">${a.membersSkipped}</b>members skipped</div>`;
}

// ---------- results gallery ----------
const itemState = it => it.status === 'done' ? 'success' : it.status === 'pending' ? 'queued' : 'failed';
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** One image or page: its thumbnail, name, state, reason and answers (only the chosen task's when one is). */
function itemCard(runId, it, name, task) {
  return html`<div class="card" data-item="${it.itemKey}"${it.page != null ? html` data-page="${it.page}"` : ''}>
      ${it.status === 'failed' && it.width == null ? html`<div class="noimg">no preview</div>`
        : html`<img loading="lazy" alt="${it.itemKey}" src="api/runs/${runId}/items/${encodeURIComponent(it.id)}/thumbnail">`}
      <div class="body"><div class="key">${name} ${badge(itemState(it))} <a class="item-link" href="#/run/${runId}/item/${encodeURIComponent(it.id)}">history</a></div>
        ${it.error ? html`<div class="error">${it.error}</div>` : ''}
        ${Object.entries(it.answers).filter(([t]) => !task || t === task).map(([t, a]) =>
          html`<div class="answer" data-task="${t}"><b>${t}</b><div class="text">${a.answer ?? a.error ?? ''}</div></div>`)}
      </div></div>`;
}

/** A document (a PDF, a TIFF stack, a PDF inside a ZIP...) as one card: first page, name, pages, states; opens to its pages. */
function documentCard(runId, it) {
  const d = it.document;
  const states = [['done', 'success', d.done], ['failed', 'failed', d.failed], ['pending', 'queued', d.pending]].filter(s => s[2]);
  return html`<a class="card doc" data-item="${d.name}" data-document="${it.id}" href="#/run/${runId}/document/${encodeURIComponent(it.id)}">
      ${it.status === 'failed' && it.width == null ? html`<div class="noimg">no preview</div>`
        : html`<img loading="lazy" alt="${d.name}" src="api/runs/${runId}/items/${encodeURIComponent(it.id)}/thumbnail">`}
      <div class="body"><div class="key">${d.name}</div>
        <div class="pages">${plural(d.pages, 'page', 'pages')}: ${states.map(([word, state, n]) =>
          html`<span class="badge s-${state}">${n} ${word}</span> `)}</div>
      </div></a>`;
}

// ---------- a document's pages ----------
async function documentPage(turn, id, item, params) {
  const q = new URLSearchParams(params);
  const pageText = q.get('page') || '0';
  if (!/^[0-9]{1,6}$/.test(pageText)) return notFound(turn, 'page ' + pageText);
  const page = +pageText, size = 24;
  const r = await api('runs/' + id);
  const data = await api(`runs/${id}/documents/${encodeURIComponent(item)}?page=${page}&size=${size}`);
  const name = data.items.length ? data.items[0].itemKey.replace(/#p[0-9]+$/, '') : '';
  const pages = Math.max(1, Math.ceil(data.total / size));
  if (!drawPage(turn, html`<h1><a href="#/run/${id}">${r.job} · ${r.logicalDate}</a> · <a id="back" href="#/run/${id}/results">results</a></h1>
    <h2 id="document-name">${name}</h2>
    <p class="muted" id="total">${plural(data.total, 'page', 'pages')}</p>
    <div class="cards" id="cards">${data.items.map(it => itemCard(id, it, 'page ' + it.page))}</div>
    <div class="row"><button class="secondary" id="prev" ${page === 0 ? 'disabled' : ''}>← previous</button>
      <span>${pages > 1 ? `pages ${page * size + 1}–${Math.min(data.total, (page + 1) * size)} of ${data.total}` : ''}</span>
      <button class="secondary" id="next" ${page + 1 >= pages ? 'disabled' : ''}>next →</button></div>`)) return;
  const go = p => { location.hash = `#/run/${id}/document/${encodeURIComponent(item)}?page=${p}`; };
  document.getElementById('prev').onclick = () => go(page - 1);
  document.getElementById('next').onclick = () => go(page + 1);
}

async function galleryPage(turn, id, params) {
  const q = new URLSearchParams(params);
  const pageText = q.get('page') || '0';
  if (!/^[0-9]{1,6}$/.test(pageText)) return notFound(turn, 'page ' + pageText);
  const page = +pageText, size = 24;
  const r = await api('runs/' + id);
  const filter = new URLSearchParams();
  ['status', 'task', 'label', 'q'].forEach(k => { if (q.get(k)) filter.set(k, q.get(k)); });
  const data = await api(`runs/${id}/results?page=${page}&size=${size}&${filter}`);
  const pages = Math.max(1, Math.ceil(data.total / size));
  const images = data.total - (data.documents || 0);
  if (!drawPage(turn, html`<h1><a href="#/run/${id}">${r.job} · ${r.logicalDate}</a> · results</h1>
    <form class="row" id="filters">
      <select name="status"><option value="">any status</option>${['done', 'failed', 'pending'].map(s => html`<option ${q.get('status') === s ? 'selected' : ''}>${s}</option>`)}</select>
      <select name="task"><option value="">any task</option>${r.tasks.map(t => html`<option ${q.get('task') === t ? 'selected' : ''}>${t}</option>`)}</select>
      <input name="label" placeholder="label (exact answer)" value="${q.get('label') || ''}">
      <input name="q" id="search" placeholder="search answers and names" value="${q.get('q') || ''}" size="28">
      <button id="apply">Apply</button>
      <span class="muted" id="total">${plural(images, 'image', 'images')}${data.documents ? ', ' + plural(data.documents, 'document', 'documents') : ''}</span>
    </form>
    <div class="cards" id="cards">${data.items.length ? data.items.map(it => it.document ? documentCard(id, it)
      : itemCard(id, it, it.itemKey, q.get('task'))) : html`<p class="muted">no images match</p>`}</div>
    <div class="row"><button class="secondary" id="prev" ${page === 0 ? 'disabled' : ''}>← previous</button>
      <span>page ${page + 1} of ${pages}</span><button class="secondary" id="next" ${page + 1 >= pages ? 'disabled' : ''}>next →</button></div>`)) return;
  const go = p => {
    const f = new URLSearchParams(new FormData(document.getElementById('filters')));
    [...f.keys()].forEach(k => { if (!f.get(k)) f.delete(k); });
    f.set('page', p);
    location.hash = `#/run/${id}/results?${f}`;
  };
  document.getElementById('filters').onsubmit = e => { e.preventDefault(); go(0); };
  document.getElementById('prev').onclick = () => go(page - 1);
  document.getElementById('next').onclick = () => go(page + 1);
}

// ---------- playground ----------
const pg = { session: null, busy: false };

async function playgroundPage(turn) {
  const templates = await api('playground/templates');
  if (!drawPage(turn, html`<h1>Playground</h1>
    <div class="pg">
      <div>
        <input type="file" id="upload" accept="image/*">
        <div id="preview">${pg.session ? html`<img src="api/playground/sessions/${encodeURIComponent(pg.session.id)}/image" alt="upload">` : html`<p class="muted">Upload an image to ask about it.</p>`}</div>
      </div>
      <div>
        <div class="chat" id="chat"></div>
        <div class="row">
          <select id="template"><option value="">type a question…</option>${templates.map(t => html`<option value="${t.id}">${t.label}</option>`)}</select>
        </div>
        <textarea id="question" placeholder="Ask about the image"></textarea>
        <div class="row"><button id="ask" ${pg.session ? '' : 'disabled'}>Ask</button><span class="muted" id="pg-status"></span></div>
      </div>
    </div>`)) return;
  const chat = document.getElementById('chat');
  if (pg.session) {
    const s = await api('playground/sessions/' + encodeURIComponent(pg.session.id)).catch(() => null);
    if (s) s.turns.forEach(t => { addMsg(chat, 'user', t.question); addMsg(chat, 'assistant', t.answer); });
  }
  document.getElementById('template').onchange = e => {
    const t = templates.find(x => x.id === e.target.value);
    document.getElementById('question').value = t ? t.text : '';
  };
  document.getElementById('upload').onchange = async e => {
    const file = e.target.files[0];
    if (!file) return;
    const form = new FormData();
    form.append('image', file);
    try {
      pg.session = await api('playground/sessions', { method: 'POST', body: form });
      route();
    } catch (err) { addMsg(chat, 'err', err.message); }
  };
  document.getElementById('ask').onclick = () => ask(chat);
}

function addMsg(chat, who, text) {
  const d = document.createElement('div');
  d.className = 'msg ' + who;
  d.textContent = text;
  chat.appendChild(d);
  return d;
}

async function ask(chat) {
  if (pg.busy || !pg.session) return;
  const templateId = document.getElementById('template').value;
  const question = document.getElementById('question').value.trim();
  const status = document.getElementById('pg-status');
  const body = templateId ? { template: templateId } : { question };
  if (!templateId && !question) return;
  pg.busy = true;
  document.getElementById('ask').disabled = true;
  status.textContent = 'answering…';
  const asked = addMsg(chat, 'user', question || templateId);
  const answer = addMsg(chat, 'assistant', '');
  try {
    const r = await fetch(`api/playground/sessions/${encodeURIComponent(pg.session.id)}/ask`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'Accept': 'text/event-stream', 'X-XSRF-TOKEN': csrf() },
      body: JSON.stringify(body) });
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).detail || 'HTTP ' + r.status);
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = (block.match(/^event:(.*)$/m) || [])[1]?.trim();
        const data = block.split('\n').filter(l => l.startsWith('data:')).map(l => l.slice(5)).join('\n');
        if (!event || !data) continue;
        const payload = JSON.parse(data);
        if (event === 'question') asked.textContent = payload.text;
        if (event === 'token') answer.textContent += payload.text;
        if (event === 'done') { answer.textContent = payload.answer; answer.classList.add('complete'); }
        if (event === 'error') { answer.className = 'msg err'; answer.textContent = payload.message; }
      }
    }
    document.getElementById('question').value = '';
  } catch (e) {
    answer.className = 'msg err';
    answer.textContent = e.message;
  } finally {
    pg.busy = false;
    document.getElementById('ask').disabled = false;
    status.textContent = '';
  }
}

// ---------- router ----------
// Renders the page shown now again after ms (a run still going), unless the user has gone elsewhere by then:
// one pending refresh at a time, cleared by every navigation, so a page never re-renders one it did not draw.
function refreshLater(ms) {
  clearTimeout(timer);
  const shown = location.hash;
  timer = setTimeout(() => { if (location.hash === shown) route(); }, ms);
}


// Route parameters are checked against what a job name or run id can be before anything uses them.
async function route() {
  clearTimeout(timer);
  const turn = ++navigation;
  const hash = location.hash.replace(/^#/, '') || '/';
  const cut = hash.indexOf('?');
  const [path, query] = cut < 0 ? [hash, ''] : [hash.slice(0, cut), hash.slice(cut + 1)];
  try {
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts.length === 0) await jobsPage(turn);
    else if (parts[0] === 'job' && parts.length === 2 && JOB_NAME.test(parts[1])) await jobPage(turn, parts[1]);
    else if (parts[0] === 'run' && parts.length === 3 && parts[2] === 'results' && RUN_ID.test(parts[1])) await galleryPage(turn, parts[1], query);
    else if (parts[0] === 'run' && parts.length === 4 && parts[2] === 'document' && RUN_ID.test(parts[1]) && RUN_ID.test(parts[3])) await documentPage(turn, parts[1], parts[3], query);
    else if (parts[0] === 'run' && parts.length === 2 && RUN_ID.test(parts[1])) await runPage(turn, parts[1]);
    else if (parts[0] === 'run' && parts.length === 4 && parts[2] === 'item' && RUN_ID.test(parts[1]) && ITEM_ID.test(parts[3])) await itemPage(turn, parts[1], parts[3]);
    else if (parts[0] === 'playground' && parts.length === 1) await playgroundPage(turn);
    else notFound(turn, '/' + parts.join('/'));
  } catch (e) {
    if (!drawPage(turn, html``)) return;
    fail(e);
  }
}
window.addEventListener('hashchange', route);
route();
