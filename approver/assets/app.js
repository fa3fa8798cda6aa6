// The reviewer page. Every value from the API is put in the page as text
// (textContent), never as HTML: previews and paths come from agents.
'use strict';

const TOKEN_KEY = 'transit-guard-approver-token';
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

function token() { return localStorage.getItem(TOKEN_KEY); }

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function age(secs) {
  if (secs < 60) return secs + ' s';
  if (secs < 3600) return Math.floor(secs / 60) + ' min';
  return Math.floor(secs / 3600) + ' h ' + Math.floor((secs % 3600) / 60) + ' min';
}

function setStatus(text, isError) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

async function api(method, path, body) {
  const resp = await fetch(path, {
    method,
    headers: { 'Authorization': 'Bearer ' + token(), 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  let data = null;
  try { data = await resp.json(); } catch (_) { /* not JSON */ }
  if (resp.status === 401) { showLogin('That token was refused: enter it again.'); }
  if (!resp.ok) {
    const reason = data && data.reason ? data.reason : resp.statusText;
    throw new Error(resp.status + ' ' + reason);
  }
  return data;
}

function showLogin(message) {
  localStorage.removeItem(TOKEN_KEY);
  $('login').hidden = false;
  $('queue').hidden = true;
  $('signout').hidden = true;
  setStatus(message || '', !!message);
}

function showQueue() {
  $('login').hidden = true;
  $('queue').hidden = false;
  $('signout').hidden = false;
}

function card(a) {
  const reason = el('input', { type: 'text', class: 'reason', placeholder: 'reason (kept with the decision)', maxlength: '1000' });
  const buttons = [
    ['approve once', 'approve approve-once', { grant: 'once' }],
    ['approve for 1 h', 'approve approve-hour', { grant: { ttl_secs: 3600 } }],
    ['deny', 'deny', null],
  ].map(([label, cls, grant]) => {
    const b = el('button', { type: 'button', class: cls }, label);
    b.addEventListener('click', () => decide(a.id, grant, reason.value, c));
    return b;
  });
  const groups = a.identity.groups.length ? ' [' + a.identity.groups.join(', ') + ']' : '';
  const c = el('div', { class: 'card', 'data-id': a.id, id: a.id },
    el('div', { class: 'line' },
      el('span', { class: 'who' }, a.identity.sub + groups),
      el('span', { class: 'request' }, a.method + ' ' + a.authority + a.path),
      el('span', { class: 'rule' }, 'rule ' + a.rule),
      el('span', { class: 'meta age' }, ''),
    ),
    el('div', { class: 'meta' }, a.id + ' · issuer ' + (a.identity.iss || '-') + ' · request ' + a.request_id),
    el('pre', { class: 'preview' }, a.preview || '(no body)'),
    el('div', { class: 'actions' }, reason, ...buttons),
  );
  return c;
}

async function decide(id, grant, reason, c) {
  for (const b of c.querySelectorAll('button')) b.disabled = true;
  try {
    if (grant) {
      await api('POST', '/v1/approvals/' + encodeURIComponent(id) + '/approve', { reason, grant: grant.grant });
      setStatus('Approved ' + id);
    } else {
      await api('POST', '/v1/approvals/' + encodeURIComponent(id) + '/deny', { reason });
      setStatus('Denied ' + id);
    }
    c.remove();
  } catch (e) {
    setStatus('Could not decide ' + id + ': ' + e.message, true);
    for (const b of c.querySelectorAll('button')) b.disabled = false;
  }
  refresh();
}

function renderPending(items) {
  const box = $('pending');
  const want = new Set(items.map((a) => a.id));
  for (const c of [...box.children]) if (!want.has(c.dataset.id)) c.remove();
  // Keep existing cards (a reason being typed survives a refresh); newest first.
  let prev = null;
  for (const a of items) {
    let c = box.querySelector('[data-id="' + CSS.escape(a.id) + '"]');
    if (!c) c = card(a);
    c.querySelector('.age').textContent = age(a.age_secs) + ' ago';
    c.classList.toggle('highlight', location.hash === '#' + a.id);
    if (prev ? prev.nextSibling !== c : box.firstChild !== c) {
      if (prev) prev.after(c); else box.prepend(c);
    }
    prev = c;
  }
  $('count').textContent = '(' + items.length + ')';
  $('empty').hidden = items.length > 0;
}

function renderRecent(items, now) {
  const body = $('recent').querySelector('tbody');
  body.replaceChildren(...items.filter((a) => a.status !== 'pending').slice(0, 20).map((a) =>
    el('tr', { 'data-id': a.id },
      el('td', {}, age(Math.max(0, now - (a.decided_at || a.created_at))) + ' ago'),
      el('td', {}, a.identity.sub),
      el('td', {}, a.method + ' ' + a.authority + a.path),
      el('td', {}, a.rule),
      el('td', { class: 'decision' }, a.status + (a.grant ? ' (' + a.grant + ')' : '')),
      el('td', {}, a.reviewer || ''),
      el('td', {}, a.reason || ''),
    )));
}

let timer = null;
async function refresh() {
  clearTimeout(timer);
  if (!token()) return;
  try {
    const [pending, all] = await Promise.all([
      api('GET', '/v1/approvals?status=pending'),
      api('GET', '/v1/approvals?status=all&limit=40'),
    ]);
    showQueue();
    renderPending(pending.approvals);
    renderRecent(all.approvals, all.now);
    if ($('status').className === 'error') setStatus('');
    $('who').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    if (token()) setStatus('Could not load approvals: ' + e.message, true);
  }
  if (token()) timer = setTimeout(refresh, POLL_MS);
}

function init() {
  $('save-token').addEventListener('click', () => {
    const t = $('token').value.trim();
    if (!t) return;
    localStorage.setItem(TOKEN_KEY, t);
    $('token').value = '';
    setStatus('');
    refresh();
  });
  $('token').addEventListener('keydown', (e) => { if (e.key === 'Enter') $('save-token').click(); });
  $('signout').addEventListener('click', () => { clearTimeout(timer); showLogin(''); });
  window.addEventListener('hashchange', refresh);
  if (token()) refresh(); else showLogin('');
}

document.addEventListener('DOMContentLoaded', init);
