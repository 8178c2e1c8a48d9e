// vlm-batch web UI: plain JavaScript, no build step. Hash routes:
//   #/  jobs · #/job/NAME  runs grid · #/run/ID  run detail · #/run/ID/results  gallery · #/playground
'use strict';

const view = document.getElementById('view');
const STATES = ['success', 'running', 'queued', 'up_for_retry', 'failed', 'stopped'];
let timer = null;

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
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
function badge(state) { return `<span class="badge s-${esc(state)}">${esc(state)}</span>`; }
function when(iso) { return iso ? new Date(iso).toLocaleString() : '—'; }
function fail(e) { view.insertAdjacentHTML('afterbegin', `<p class="error" id="error">${esc(e.message || e)}</p>`); }

// ---------- jobs ----------
async function jobsPage() {
  const jobs = await api('jobs');
  view.innerHTML = `<h1>Jobs</h1>
    <table id="jobs"><tr><th>Job</th><th>Schedule</th><th>Next run</th><th>Last run</th><th>Tasks</th><th>Run now</th></tr>
    ${jobs.map(j => j.error ? `<tr><td>${esc(j.name)}</td><td colspan="5" class="error">${esc(j.error)}</td></tr>` : `
      <tr data-job="${esc(j.name)}">
        <td><a class="job-link" href="#/job/${encodeURIComponent(j.name)}">${esc(j.name)}</a></td>
        <td>${j.schedule ? `<code>${esc(j.schedule)}</code> <span class="muted">${esc(j.timezone)}${j.catchup ? ', catchup' : ''}, max ${j.maxActiveRuns} active${j.retries ? ', ' + j.retries + ' retries' : ''}</span>` : '<span class="muted">manual</span>'}</td>
        <td class="next-run">${j.nextRunAt ? when(j.nextRunAt) : '—'}</td>
        <td>${j.lastRun ? `${badge(j.lastRun.state)} ${esc(j.lastRun.logicalDate)}` : '<span class="muted">no runs yet</span>'}</td>
        <td>${j.tasks.map(esc).join(', ')}</td>
        <td><input type="date" class="trigger-date"> <button class="trigger">Trigger</button></td>
      </tr>`).join('')}
    </table>`;
  view.querySelectorAll('button.trigger').forEach(b => b.onclick = async () => {
    const tr = b.closest('tr');
    const date = tr.querySelector('.trigger-date').value;
    try {
      await api(`jobs/${encodeURIComponent(tr.dataset.job)}/trigger` + (date ? `?date=${date}` : ''), { method: 'POST' });
      location.hash = '#/job/' + encodeURIComponent(tr.dataset.job);
    } catch (e) { fail(e); }
  });
}

// ---------- one job: grid of runs by logical date ----------
async function jobPage(name) {
  const [job, runs] = await Promise.all([api('jobs/' + encodeURIComponent(name)), api(`jobs/${encodeURIComponent(name)}/runs?limit=90`)]);
  const ordered = [...runs].reverse();
  view.innerHTML = `<h1>${esc(job.name)}</h1>
    <p class="muted">${job.schedule ? `cron <code>${esc(job.schedule)}</code> (${esc(job.timezone)}) · next run ${when(job.nextRunAt)}` : 'no schedule: runs when triggered'}
      · tasks ${job.tasks.map(esc).join(', ')}</p>
    <div class="grid" id="grid">${ordered.map(r => `<a class="cell s-${esc(r.state)}" title="${esc(r.logicalDate + (r.params ? ' ' + r.params : '') + ': ' + r.state)}"
        href="${r.runId ? '#/run/' + r.runId : '#/job/' + encodeURIComponent(name)}" data-date="${esc(r.logicalDate)}"></a>`).join('') || '<span class="muted">no runs yet</span>'}</div>
    <div class="legend">${STATES.map(s => `<span><i class="s-${s}"></i>${s}</span>`).join('')}</div>
    <h2>Runs</h2>
    <table id="runs"><tr><th>Logical date</th><th>State</th><th>Trigger</th><th>Attempt</th><th>Images</th><th>Started</th><th>Ended</th><th></th></tr>
    ${runs.map(r => `<tr data-date="${esc(r.logicalDate)}" data-params="${esc(r.params)}">
      <td>${r.runId ? `<a class="run-link" href="#/run/${r.runId}">${esc(r.logicalDate)}</a>` : esc(r.logicalDate)} <span class="muted">${esc(r.params)}</span></td>
      <td>${badge(r.state)}${r.lastError ? `<div class="error">${esc(r.lastError)}</div>` : ''}${r.nextAttemptAt ? `<div class="muted">retry at ${when(r.nextAttemptAt)}</div>` : ''}</td>
      <td>${esc(r.trigger || 'cli')}</td><td>${esc(r.attempt ?? '—')}</td>
      <td>${r.done} done, ${r.failed} failed, ${r.pending} pending</td>
      <td>${esc(r.startedAt || '—')}</td><td>${esc(r.endedAt || '—')}</td>
      <td>${['failed', 'stopped'].includes(r.state) ? '<button class="restart">Restart</button>' : ''}
          ${['running', 'queued', 'up_for_retry'].includes(r.state) && r.scheduleState ? '<button class="secondary stop">Stop</button>' : ''}</td>
    </tr>`).join('')}</table>`;
  const act = what => async ev => {
    const tr = ev.target.closest('tr');
    try {
      await api(`jobs/${encodeURIComponent(name)}/runs/${tr.dataset.date}/${what}?params=${encodeURIComponent(tr.dataset.params)}`, { method: 'POST' });
      route();
    } catch (e) { fail(e); }
  };
  view.querySelectorAll('button.restart').forEach(b => b.onclick = act('restart'));
  view.querySelectorAll('button.stop').forEach(b => b.onclick = act('stop'));
  if (runs.some(r => ['running', 'queued', 'up_for_retry', 'stopping'].includes(r.state))) timer = setTimeout(route, 3000);
}

// ---------- one run: progress, steps, failures ----------
async function runPage(id) {
  const r = await api('runs/' + id);
  const c = r.counts;
  const pct = n => c.total ? (100 * n / c.total).toFixed(1) : 0;
  view.innerHTML = `<h1><a href="#/job/${encodeURIComponent(r.job)}">${esc(r.job)}</a> · ${esc(r.logicalDate)} ${esc(r.params)} ${badge(r.state)}</h1>
    <div class="progress" id="progress" title="${c.done} done, ${c.failed} failed of ${c.total}">
      <div class="done" style="width:${pct(c.done)}%"></div><div class="failed" style="width:${pct(c.failed)}%"></div></div>
    <div class="stats">
      <div class="stat"><b id="count-done">${c.done}</b>done</div>
      <div class="stat"><b id="count-failed">${c.failed}</b>failed</div>
      <div class="stat"><b id="count-pending">${c.pending}</b>pending</div>
      <div class="stat"><b>${(r.imagesPerSecond ?? 0).toFixed(2)}</b>images/s</div>
      <div class="stat"><b>${r.elapsedSeconds ? r.elapsedSeconds.toFixed(1) + ' s' : '—'}</b>elapsed</div>
    </div>
    <p><a id="gallery-link" href="#/run/${r.runId}/results">Results gallery →</a></p>
    ${r.schedule && r.schedule.lastError ? `<p class="error">${esc(r.schedule.lastError)}</p>` : ''}
    <h2>Steps (latest execution)</h2>
    <table id="steps"><tr><th>Step</th><th>Status</th><th>Read</th><th>Written</th><th>Commits</th><th>Rollbacks</th><th>Started</th><th>Ended</th></tr>
      ${r.steps.map(s => `<tr><td>${esc(s.name)}</td><td>${esc(s.status)}</td><td>${s.read}</td><td>${s.written}</td><td>${s.commits}</td>
        <td>${s.rollbacks}</td><td>${esc(s.startedAt || '')}</td><td>${esc(s.endedAt || '')}</td></tr>`).join('')}</table>
    <h2>Failed items (${c.failed})</h2>
    ${r.failures.length ? `<table id="failures"><tr><th>Image</th><th>Reason</th></tr>${r.failures.map(f =>
      `<tr><td>${esc(f.itemKey)}</td><td class="error">${esc(f.error)}</td></tr>`).join('')}</table>` : '<p class="muted">none</p>'}
    <h2>Executions</h2>
    <table><tr><th>Execution</th><th>Status</th><th>Started</th><th>Ended</th><th>Exit</th></tr>
      ${r.executions.map(e => `<tr><td>${e.id}</td><td>${esc(e.status)}</td><td>${esc(e.startedAt || '')}</td><td>${esc(e.endedAt || '')}</td>
        <td class="error">${esc((e.exitMessage || '').slice(0, 400))}</td></tr>`).join('')}</table>`;
  if (['running', 'queued', 'stopping', 'up_for_retry'].includes(r.state)) timer = setTimeout(route, 2000);
}

// ---------- results gallery ----------
async function galleryPage(id, params) {
  const r = await api('runs/' + id);
  const q = new URLSearchParams(params);
  const page = +(q.get('page') || 0), size = 24;
  const filter = new URLSearchParams();
  ['status', 'task', 'label', 'q'].forEach(k => { if (q.get(k)) filter.set(k, q.get(k)); });
  const data = await api(`runs/${id}/results?page=${page}&size=${size}&${filter}`);
  const pages = Math.max(1, Math.ceil(data.total / size));
  view.innerHTML = `<h1><a href="#/run/${id}">${esc(r.job)} · ${esc(r.logicalDate)}</a> · results</h1>
    <form class="row" id="filters">
      <select name="status"><option value="">any status</option>${['done', 'failed', 'pending'].map(s => `<option ${q.get('status') === s ? 'selected' : ''}>${s}</option>`).join('')}</select>
      <select name="task"><option value="">any task</option>${r.tasks.map(t => `<option ${q.get('task') === t ? 'selected' : ''}>${esc(t)}</option>`).join('')}</select>
      <input name="label" placeholder="label (exact answer)" value="${esc(q.get('label') || '')}">
      <input name="q" id="search" placeholder="search answers and names" value="${esc(q.get('q') || '')}" size="28">
      <button id="apply">Apply</button>
      <span class="muted" id="total">${data.total} image${data.total === 1 ? '' : 's'}</span>
    </form>
    <div class="cards" id="cards">${data.items.map(it => `<div class="card" data-item="${esc(it.itemKey)}">
      ${it.status === 'failed' && it.width == null ? '<div class="noimg">no preview</div>'
        : `<img loading="lazy" alt="${esc(it.itemKey)}" src="api/runs/${id}/items/${it.id}/thumbnail">`}
      <div class="body"><div class="key">${esc(it.itemKey)} ${badge(it.status === 'done' ? 'success' : it.status === 'pending' ? 'queued' : 'failed')}</div>
        ${it.error ? `<div class="error">${esc(it.error)}</div>` : ''}
        ${Object.entries(it.answers).filter(([t]) => !q.get('task') || t === q.get('task')).map(([t, a]) =>
          `<div class="answer" data-task="${esc(t)}"><b>${esc(t)}</b><div class="text">${esc(a.answer ?? a.error ?? '')}</div></div>`).join('')}
      </div></div>`).join('') || '<p class="muted">no images match</p>'}</div>
    <div class="row"><button class="secondary" id="prev" ${page === 0 ? 'disabled' : ''}>← previous</button>
      <span>page ${page + 1} of ${pages}</span><button class="secondary" id="next" ${page + 1 >= pages ? 'disabled' : ''}>next →</button></div>`;
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

async function playgroundPage() {
  const templates = await api('playground/templates');
  view.innerHTML = `<h1>Playground</h1>
    <div class="pg">
      <div>
        <input type="file" id="upload" accept="image/*">
        <div id="preview" style="margin-top:10px">${pg.session ? `<img src="api/playground/sessions/${pg.session.id}/image" alt="upload">` : '<p class="muted">Upload an image to ask about it.</p>'}</div>
      </div>
      <div>
        <div class="chat" id="chat"></div>
        <div class="row">
          <select id="template"><option value="">type a question…</option>${templates.map(t => `<option value="${esc(t.id)}">${esc(t.label)}</option>`).join('')}</select>
        </div>
        <textarea id="question" placeholder="Ask about the image"></textarea>
        <div class="row"><button id="ask" ${pg.session ? '' : 'disabled'}>Ask</button><span class="muted" id="pg-status"></span></div>
      </div>
    </div>`;
  const chat = document.getElementById('chat');
  if (pg.session) {
    const s = await api('playground/sessions/' + pg.session.id).catch(() => null);
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
    const r = await fetch(`api/playground/sessions/${pg.session.id}/ask`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-XSRF-TOKEN': csrf() }, body: JSON.stringify(body) });
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || 'HTTP ' + r.status);
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
async function route() {
  clearTimeout(timer);
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  try {
    if (parts.length === 0) await jobsPage();
    else if (parts[0] === 'job') await jobPage(parts[1]);
    else if (parts[0] === 'run' && parts[2] === 'results') await galleryPage(parts[1], query || '');
    else if (parts[0] === 'run') await runPage(parts[1]);
    else if (parts[0] === 'playground') await playgroundPage();
    else view.innerHTML = '<p>Not found.</p>';
  } catch (e) {
    view.innerHTML = '';
    fail(e);
  }
}
window.addEventListener('hashchange', route);
route();
