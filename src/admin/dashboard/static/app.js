import { AuthNeeded, get, token } from './api.js';
import { h } from './dom.js';
import { fleetPage } from './pages/fleet.js';
import { poolsPage } from './pages/pools.js';
import { caPage } from './pages/ca.js';
import { nodesPage, nodePage } from './pages/nodes.js';
import { reportPage } from './pages/report.js';

// The dashboard's shell: a hash router (#/fleet, #/pools, #/ca, #/nodes, #/nodes/<certname>,
// #/reports/<id>), the token prompt when the admin API answers 401, and a refresh timer for the
// live pages. Each page is `async (main, params) => refreshMs | undefined`; it fills `main`.

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const logout = document.getElementById('logout');
let timer;
const certKey = 'ringmaster.useCertificate';
let generation = 0;

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const [page, arg] = parts;
  if (page === 'pools') return { name: 'pools', run: poolsPage };
  if (page === 'ca') return { name: 'ca', run: caPage };
  if (page === 'nodes' && arg) return { name: 'nodes', run: (m) => nodePage(m, arg) };
  if (page === 'nodes') return { name: 'nodes', run: nodesPage };
  if (page === 'reports' && arg) return { name: 'fleet', run: (m) => reportPage(m, arg) };
  return { name: 'fleet', run: fleetPage };
}

const credentials = () => token.get() !== null || sessionStorage.getItem(certKey) === '1';

async function show() {
  clearTimeout(timer);
  // Without a token or the choice of a client certificate, ask first rather than be refused.
  if (!credentials()) return login('');
  const mine = ++generation;
  const r = route();
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', a.dataset.page === r.name);
  const next = document.createElement('div');
  try {
    const refresh = await r.run(next);
    if (mine !== generation) return;
    main.replaceChildren(...next.childNodes);
    nav.hidden = false;
    logout.hidden = !credentials();
    if (refresh) timer = setTimeout(show, refresh);
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof AuthNeeded) {
      sessionStorage.removeItem(certKey);
      token.clear();
      return login(err.message);
    }
    main.replaceChildren(h('p', { class: 'error', 'data-testid': 'page-error' }, `Could not load this page: ${err.code ? `${err.code}: ` : ''}${err.message}`));
    timer = setTimeout(show, 10_000);
  }
}

function login(reason) {
  nav.hidden = true;
  logout.hidden = true;
  who.textContent = '';
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, 'data-testid': 'token-input' });
  const problem = h('p', { class: 'error', 'data-testid': 'login-problem' }, reason ? `Refused: ${reason}` : '');
  const form = h(
    'form',
    { class: 'login', 'data-testid': 'login' },
    h('h1', {}, 'Admin API token'),
    h('p', {}, 'Paste the content of the file named by admin.tokenFile. It is kept in this tab only (sessionStorage) and sent as a bearer token.'),
    h('label', { for: 'token' }, 'Token'),
    input,
    h('button', { type: 'submit', 'data-testid': 'token-submit' }, 'Open the dashboard'),
    problem,
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    token.set(input.value.trim());
    void whoami().then(show);
  });
  const cert = h('button', { type: 'button', class: 'warn', 'data-testid': 'use-certificate' }, 'Use my browser\'s client certificate instead');
  cert.addEventListener('click', () => {
    sessionStorage.setItem(certKey, '1');
    void whoami().then(show);
  });
  form.append(h('p', { class: 'muted' }, 'Or, if this browser holds a certificate that the admin API admits (pp_cli_auth or admin.allow):'), cert);
  main.replaceChildren(form);
  input.focus();
}

async function whoami() {
  if (!credentials()) return;
  try {
    const { state } = await get('/admin/v1/state');
    who.textContent = `${state.certname} · pid ${state.pid}`;
  } catch {
    who.textContent = '';
  }
}

logout.addEventListener('click', () => {
  token.clear();
  sessionStorage.removeItem(certKey);
  location.hash = '#/fleet';
  login('');
});
window.addEventListener('hashchange', () => {
  document.getElementById('flash').replaceChildren();
  void show();
});
// A page's button asks for a redraw after its change, keeping the outcome message.
window.addEventListener('rm-refresh', () => void show());
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') void show();
});
void whoami().then(show);
