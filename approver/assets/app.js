// The reviewer page. Every value from the API is put in the page as text
// (textContent), never as HTML: previews and paths come from agents.
'use strict';

const TOKEN_KEY = 'transit-guard-approver-token';
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);

function token() { return localStorage.getItem(TOKEN_KEY); }
// Signed in through the identity provider: the session cookie authenticates,
// and every state-changing call carries the session's CSRF token.
let session = null;
function signedIn() { return !!session || !!token(); }

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
  const headers = { 'Content-Type': 'application/json' };
  if (session) headers['X-CSRF-Token'] = session.csrf;
  else headers['Authorization'] = 'Bearer ' + token();
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'same-origin',
  });
  let data = null;
  try { data = await resp.json(); } catch (_) { /* not JSON */ }
  if (resp.status === 401) {
    session = null;
    showLogin('You are signed out, or that token was refused: sign in again.');
  }
  if (!resp.ok) {
    const reason = data && data.reason ? data.reason : resp.statusText;
    throw new Error(resp.status + ' ' + reason);
  }
  return data;
}

function showLogin(message) {
  localStorage.removeItem(TOKEN_KEY);
  session = null;
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

function duration(secs) {
  if (secs % 86400 === 0) return secs / 86400 + ' d';
  if (secs % 3600 === 0) return secs / 3600 + ' h';
  return Math.round(secs / 60) + ' min';
}

function card(a) {
  const p = a.policy || { approvals: 1, grants: true, max_grant_secs: 3600, groups: [] };
  const grantSecs = Math.min(3600, p.max_grant_secs);
  const reason = el('input', { type: 'text', class: 'reason', placeholder: 'reason (kept with the decision)', maxlength: '1000' });
  const choices = [['approve once', 'approve approve-once', { grant: 'once' }]];
  if (p.grants && grantSecs > 0) {
    choices.push(['approve for ' + duration(grantSecs), 'approve approve-hour', { grant: { ttl_secs: grantSecs } }]);
  }
  choices.push(['deny', 'deny', null]);
  const buttons = choices.map(([label, cls, grant]) => {
    const b = el('button', { type: 'button', class: cls }, label);
    b.addEventListener('click', () => decide(a.id, grant, reason.value, c));
    return b;
  });
  const groups = a.identity.groups.length ? ' [' + a.identity.groups.join(', ') + ']' : '';
  // What reaches the upstream if approved: exactly this request.
  const headers = el('table', { class: 'headers' },
    ...a.headers.map((h) => el('tr', {}, el('td', {}, h.name), el('td', {}, h.value))));
  const votes = a.votes.filter((v) => v.approve).map((v) => v.reviewer);
  const policy = [
    p.approvals > 1 ? p.approvals + ' approvals needed (' + votes.length + ' so far' + (votes.length ? ': ' + votes.join(', ') : '') + ')' : '1 approval needed',
    p.groups.length ? 'reviewers from ' + p.groups.map((g) => g.join(' or ')).join(' and ') : 'any reviewer',
    p.grants ? 'grants up to ' + duration(p.max_grant_secs) : 'no time-bound grant',
  ].join(' · ');
  const scope = p.grants
    ? 'approve for ' + duration(grantSecs) + ' lets through, until it ends, every request from ' + a.identity.sub +
      ' (' + (a.identity.iss || '-') + ') that rule ' + a.rule + ' holds, whatever its method, path or body.'
    : '';
  const c = el('div', { class: 'card', 'data-id': a.id, id: a.id },
    el('div', { class: 'line' },
      el('span', { class: 'who' }, a.identity.sub + groups),
      el('span', { class: 'request' }, a.method + ' ' + a.authority + a.path),
      el('span', { class: 'rule' }, 'rule ' + a.rule),
      el('span', { class: 'meta age' }, ''),
    ),
    el('div', { class: 'meta' }, a.id + ' · issuer ' + (a.identity.iss || '-') + ' · request ' + a.request_id),
    el('div', { class: 'meta policy' }, policy),
    a.headers.length ? headers : el('div', { class: 'meta' }, '(the filter sent no headers)'),
    el('pre', { class: 'preview' }, a.preview || '(no body)'),
    el('div', { class: 'meta scope' }, scope),
    el('div', { class: 'actions' }, reason, ...buttons),
  );
  return c;
}

async function decide(id, grant, reason, c) {
  for (const b of c.querySelectorAll('button')) b.disabled = true;
  try {
    if (grant) {
      const r = await api('POST', '/v1/approvals/' + encodeURIComponent(id) + '/approve', { reason, grant: grant.grant });
      grant.pending = r.status === 'pending';
      setStatus((grant.pending ? 'Approval recorded for ' : 'Approved ') + id);
    } else {
      await api('POST', '/v1/approvals/' + encodeURIComponent(id) + '/deny', { reason });
      setStatus('Denied ' + id);
    }
    if (!grant || !grant.pending) c.remove();
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
      el('td', { class: 'reviewer' }, a.reviewer || ''),
      el('td', {}, a.reason || ''),
    )));
}

let timer = null;
// Set when the last load failed: the next good load clears its message (and
// only its message: a refused decision stays on screen).
let loadFailed = false;
async function refresh() {
  clearTimeout(timer);
  if (!signedIn()) return;
  try {
    const [pending, all] = await Promise.all([
      api('GET', '/v1/approvals?status=pending'),
      api('GET', '/v1/approvals?status=all&limit=40'),
    ]);
    showQueue();
    renderPending(pending.approvals);
    renderRecent(all.approvals, all.now);
    if (loadFailed) { setStatus(''); loadFailed = false; }
    $('who').textContent = (session ? 'signed in as ' + session.name + ' · ' : '') +
      'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    if (signedIn()) { setStatus('Could not load approvals: ' + e.message, true); loadFailed = true; }
  }
  if (signedIn()) timer = setTimeout(refresh, POLL_MS);
}

// A session from the identity provider, if any; whether sign-in is offered.
async function loadSession() {
  try {
    const resp = await fetch('/auth/me', { cache: 'no-store', credentials: 'same-origin' });
    const me = await resp.json();
    $('sso').hidden = !me.oidc;
    session = me.signed_in ? me : null;
  } catch (_) {
    session = null;
  }
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
  $('signout').addEventListener('click', async () => {
    clearTimeout(timer);
    if (session) {
      try { await api('POST', '/auth/logout', {}); } catch (_) { /* shown by api */ }
    }
    showLogin('');
  });
  window.addEventListener('hashchange', refresh);
  loadSession().then(() => { if (signedIn()) refresh(); else showLogin(''); });
}

document.addEventListener('DOMContentLoaded', init);
