import { ApiError, get, post } from '../api.js';
import { badge, card, flash, h, section, table, time } from '../dom.js';

// The CA: pending certificate requests with sign and reject, certificates expiring soon, and the
// CA's own expiry and CRL. Signing here is `ringmaster ca sign NAME`: the agent waiting with
// waitforcert gets its certificate on its next poll. With an external CA (`ca.enabled: false`)
// there is nothing to sign here: the page shows that CA as ringmaster uses it.

export async function caPage(main) {
  const { ca: summary } = await get('/admin/v1/ca?expiring=30d');
  if (summary.mode === 'external') return externalPage(main, summary);
  const ca = summary;
  const [pending, expiring] = await Promise.all([
    get('/admin/v1/ca/certificates?state=requested'),
    get('/admin/v1/ca/certificates?expiring=30d'),
  ]);
  main.append(
    h('h1', {}, 'Certificate authority'),
    h(
      'div',
      { class: 'cards' },
      card('pending requests', ca.counts.requested, { 'data-testid': 'ca-pending-count' }),
      card('signed', ca.counts.signed),
      card('revoked', ca.counts.revoked),
      card(`expiring within ${ca.expiringWithinDays} d`, ca.expiring, { class: ca.expiring > 0 ? 'card k-failed' : 'card' }),
      card('CA expires', `${ca.expiresInDays} d`, { title: ca.notAfter }),
    ),
    h('p', { class: 'muted' }, `${ca.subject} · valid until ${time(ca.notAfter)} · CRL next update ${time(ca.crlNextUpdate)}`),
  );

  const rows = pending.certificates.map((c) =>
    h(
      'tr',
      { 'data-testid': `csr-${c.name}` },
      h('td', {}, c.name),
      h('td', { class: 'mono small' }, c.fingerprint),
      h('td', {}, c.dnsAltNames.length ? c.dnsAltNames.join(', ') : '–'),
      h('td', {}, Object.keys(c.authorizationExtensions).length ? Object.entries(c.authorizationExtensions).map(([k, v]) => `${k}=${v}`).join(', ') : '–'),
      h(
        'td',
        { class: 'actions' },
        h('button', { type: 'button', 'data-testid': `sign-${c.name}`, onclick: () => act(c.name, 'sign', c.dnsAltNames.length > 0) }, 'Sign'),
        h('button', { type: 'button', class: 'warn', 'data-testid': `reject-${c.name}`, onclick: () => act(c.name, 'reject') }, 'Reject'),
      ),
    ),
  );
  main.append(
    section(
      'Pending requests',
      rows.length === 0 ? h('p', { class: 'muted', 'data-testid': 'no-pending' }, 'No pending certificate requests.') : table(['certname', 'fingerprint (SHA256)', 'alt names', 'extensions', ''], rows, { 'data-testid': 'pending' }),
    ),
  );
  const soon = expiring.certificates;
  main.append(
    section(
      'Certificates expiring within 30 days',
      soon.length === 0
        ? h('p', { class: 'muted' }, 'None.')
        : table(['certname', 'expires', 'in', 'serial'], soon.map((c) => h('tr', {}, h('td', {}, c.name), h('td', {}, time(c.notAfter)), h('td', {}, c.expiresInDays < 0 ? badge('expired', 'down') : `${c.expiresInDays} d`), h('td', { class: 'mono' }, c.serial ?? '–'))), { 'data-testid': 'expiring' }),
    ),
  );
  return 5000;
}

function externalPage(main, ca) {
  const days = (n) => (n === null ? '–' : `${n} d`);
  const own = ca.certificate;
  main.append(
    h('h1', {}, 'Certificate authority ', badge('external', 'unknown')),
    h(
      'div',
      { class: 'cards', 'data-testid': 'external-ca' },
      card('CA expires', days(ca.expiresInDays), { title: ca.notAfter ?? '', 'data-testid': 'external-ca-expires' }),
      card('revoked (CRL in use)', ca.revoked, { 'data-testid': 'external-ca-revoked' }),
      card('CRL refresh failures', ca.crlRefreshFailures, { class: ca.crlRefreshFailures > 0 ? 'card k-failed' : 'card', 'data-testid': 'external-ca-crl-failures' }),
      card(`${own.certname} expires`, days(own.expiresInDays), { title: own.notAfter, 'data-testid': 'external-ca-own' }),
    ),
    h('p', { class: 'muted', 'data-testid': 'external-ca-subject' }, `${ca.subject} · reached through pool ${ca.pool} · CRL issued ${ca.crlThisUpdate ? time(ca.crlThisUpdate) : '–'}, next update ${ca.crlNextUpdate ? time(ca.crlNextUpdate) : '–'}`),
    section(
      'Certificates',
      h(
        'p',
        {},
        `Agents' certificate requests go to pool ${ca.pool}; they are signed, revoked and cleaned on that CA (for example with puppetserver ca). `
          + `ringmaster serves its certificate ${own.certname} (serial ${own.serial}) from that CA and refuses agents on the CA's CRL, fetched again every ca.external.crlRefresh.`,
      ),
    ),
  );
  return 5000;
}

async function act(name, action, altNames = false) {
  const path = `/admin/v1/ca/certificates/${encodeURIComponent(name)}/${action}`;
  try {
    if (action === 'sign' && altNames && !window.confirm(`${name} asks for subject alternative names. Sign with them?`)) return;
    await post(path, action === 'sign' ? { allowDnsAltNames: altNames } : undefined);
    flash(action === 'sign' ? `Signed ${name}` : `Rejected the request of ${name}`);
  } catch (err) {
    flash(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err), 'error');
  }
  window.dispatchEvent(new Event('rm-refresh'));
}
