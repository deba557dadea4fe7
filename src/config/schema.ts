// Over 500 lines on purpose: the one schema of the configuration file, with the description of every
// setting that docs/configuration.md is generated from; split up, the reference would be scattered.
import { hostname } from 'node:os';
import { z } from 'zod';
import { parseDuration } from '../lib/duration.ts';
import { parseSize } from '../lib/size.ts';
import { resolveOid } from '../ca/oids.ts';
import { isAddress, isConfigName } from '../dns/names.ts';
import { dnsZoneProblems } from '../dns/check.ts';

// The one configuration schema: it gives the types, the validation (every problem with its
// path, unknown keys refused) and the reference page (docs/configuration.md). This file is the
// only importer of zod.

const duration = (what: string) =>
  z
    .union([z.string(), z.number().nonnegative()])
    .refine((v) => parseDuration(v) !== undefined, { message: `${what}: expected a duration such as "30s", "6h", "90d" or "5y"` })
    .transform((v) => parseDuration(v) ?? 0);

const size = (what: string) =>
  z
    .union([z.string(), z.number().int().nonnegative()])
    .refine((v) => parseSize(v) !== undefined, { message: `${what}: expected a size in bytes such as 65536, "512KiB" or "64MiB"` })
    .transform((v) => parseSize(v) ?? 0);

const regex = z.string().min(1).refine((v) => {
  try {
    new RegExp(v);
    return true;
  } catch {
    return false;
  }
}, 'a valid regular expression');

const certname = z
  .string()
  .min(1)
  .regex(/^[a-z0-9_][a-z0-9._-]*$/, 'a lower-case certname (letters, digits, ".", "-", "_")');

const dnsName = z.string().regex(/^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$|^[0-9a-fA-F:.]+$/, 'a DNS name or an IP address');

const listener = z.strictObject({
  name: z.string().min(1).default('agents').describe('Name used in logs and metrics.'),
  address: z.string().min(1).default('0.0.0.0').describe('Address to bind; "::" for every IPv4 and IPv6 address.'),
  port: z.number().int().min(0).max(65535).default(8140).describe('TCP port; 0 lets the kernel pick one (logged at start).'),
  requestHeaderTimeout: duration('requestHeaderTimeout').prefault('30s').describe("Time a client has to send a whole request head (from its first byte; for a new connection, from the handshake), and to finish its TLS handshake; then 408 RM_HTTP_HEAD_TIMEOUT and the connection closes."),
  keepAliveTimeout: duration('keepAliveTimeout').prefault('30s').describe('Idle time before a kept-alive agent connection is closed; keep it above the agents\' 4 s http_keepalive_timeout.'),
  maxHeaderBytes: size('maxHeaderBytes').prefault(16384).describe('Largest request head (request line and headers) accepted on this listener; routes can set lower limits.'),
  parkIdleAfter: duration('parkIdleAfter')
    .prefault('100ms')
    .describe('Idle time after which a TLS 1.3 agent connection is parked: its OpenSSL state (40–50 KB) is freed and ringmaster keeps only its traffic keys, serving later requests on it itself. Only connections that arrive while the listener holds `parkAboveConnections` others can be parked. 0 never parks. See docs/operations.md, "Many idle connections".'),
  parkAboveConnections: z
    .number()
    .int()
    .min(0)
    .max(10_000_000)
    .prefault(100)
    .describe('With parking: a connection that arrives while the listener already holds this many open connections is read through a tap (about 10 µs more per request) so that it can be parked when idle; connections below it stay with OpenSSL alone at full speed. 0 taps every connection.'),
});

const autosign = z.strictObject({
  all: z.boolean().default(false).describe('Sign every request (puppetserver `autosign = true`). Only for labs.'),
  allow: z.array(z.string()).default([]).describe('Certnames and `*.domain` globs signed automatically (autosign.conf semantics).'),
  allowFile: z.string().optional().describe('An autosign.conf-style file of the same entries, re-read when it changes.'),
  executable: z
    .strictObject({
      path: z.string().min(1).describe('Policy program: certname as its argument, the CSR PEM on stdin, exit 0 signs.'),
      timeout: duration('timeout').prefault('10s').describe('The program is killed and the CSR left pending after this long.'),
    })
    .optional()
    .describe('A policy executable, as puppetserver runs one; ringmaster adds a timeout.'),
  tokens: z.boolean().default(true).describe('Sign CSRs whose challengePassword is a valid one-time token (`ringmaster ca token create`).'),
});

const externalCa = z.strictObject({
  pool: z.string().min(1).describe('The pool whose members are the external CA (a puppetserver or OpenVox server with its CA on). The default routes send `/puppet-ca/` there, and ringmaster gets its own certificate and the CRL from it.'),
  caFile: z.string().min(1).describe("PEM file with the external CA's certificate(s) (puppet's `ssl/certs/ca.pem`). Agents' and members' certificates are verified against it; it is never fetched over the network."),
  crlRefresh: duration('crlRefresh').prefault('5m').describe('How often the CRL is fetched from the CA pool (`/puppet-ca/v1/certificate_revocation_list/ca`). A CRL is taken only when it verifies against `caFile` and is not older than the one in use; revocations reach open connections with it.'),
  waitForCert: duration('waitForCert').prefault('2m').describe("At the first start, how long to wait for the external CA to sign ringmaster's own certificate request (autosign, or `puppetserver ca sign`). The key, certificate and CRL are kept in `<stateDir>/ssl/`, where certificates from a `puppet ssl bootstrap` may also be put."),
});

const ca = z.strictObject({
  enabled: z.boolean().default(true).describe('Run the built-in certificate authority. `false` needs `external`.'),
  external: externalCa.optional().describe('An external CA instead of the built-in one (`enabled: false`): `/puppet-ca/` goes to its pool, and the CA commands, the admin certificate endpoints and `compiler config` refuse with RM_CA_EXTERNAL.'),
  dir: z.string().optional().describe('CA directory in the puppetserver layout. Default: `<stateDir>/ca`.'),
  name: z.string().optional().describe('Subject CN of a new CA. Default: `Puppet CA: <server.certname>`.'),
  keyLength: z.number().int().min(2048).max(16384).default(4096).describe('RSA key size for a new CA and for keys ringmaster generates.'),
  caTtl: duration('caTtl').prefault('15y').describe('Lifetime of a new CA certificate.'),
  certTtl: duration('certTtl').prefault('5y').describe('Lifetime of certificates the CA signs (puppetserver `ca_ttl`); they start a day in the past.'),
  allowSubjectAltNames: z.boolean().default(false).describe('Sign CSRs carrying subject alternative names without `--allow-dns-alt-names`.'),
  allowAuthorizationExtensions: z.boolean().default(false).describe('Accept CSRs requesting pp_authorization / pp_auth_role (pp_cli_auth is never accepted).'),
  allowDuplicateCerts: z.boolean().default(false).describe('Accept a CSR for a name that already has a certificate (puppetserver `allow-duplicate-certs`).'),
  adminCertnames: z.array(certname).default([]).describe('Certnames allowed to use the administrative CA endpoints besides certificates carrying pp_cli_auth.'),
  maxCsrBytes: z.number().int().min(1024).max(1048576).default(65536).describe('Largest CSR body accepted.'),
  autosign: autosign.prefault({}),
  crl: z
    .strictObject({
      ttl: duration('crl.ttl').prefault('5y').describe('nextUpdate of each CRL ringmaster signs. Puppet 7 agents never refresh their CRL, so keep it long.'),
      renewBefore: duration('crl.renewBefore').prefault('90d').describe('Re-sign the CRL when less than this remains before its nextUpdate.'),
      checkInterval: duration('crl.checkInterval').prefault('1h').describe('How often the CRL expiry is checked.'),
      infra: z.boolean().default(false).describe('Keep an infrastructure CRL (puppetserver `enable-infra-crl`): `infra_crl.pem` revokes only the certnames listed in `infra_inventory.txt` in the CA directory, and is what `/puppet-ca/v1/certificate_revocation_list` serves. The listeners still check agents against the full CRL.'),
    })
    .prefault({}),
  autoRenewal: z
    .strictObject({
      enabled: z.boolean().default(false).describe('Serve POST /puppet-ca/v1/certificate_renewal (Puppet 8.2+ agents renew before expiry).'),
      certTtl: duration('autoRenewal.certTtl').prefault('90d').describe('Lifetime of renewed certificates.'),
    })
    .prefault({}),
  puppetVersion: z.string().regex(/^\d+\.\d+\.\d+$/).default('8.4.0').describe('Version sent in X-Puppet-Version; clients such as `puppetserver ca` use it to choose endpoints (bulk signing needs 8.4.0).'),
});


// ---- the gateway: pools of members and the routes that send requests to them ----

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a name of letters, digits, ".", "-", "_"');

const memberUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search && !u.hash && !u.username && !u.password;
  } catch {
    return false;
  }
}, 'an http:// or https:// URL with host and port and no path, e.g. http://10.0.0.5:8141');

const member = z.strictObject({
  name: name.describe('Member name, unique in its pool; used in logs, metrics and commands.'),
  url: memberUrl.describe('Where the compiler listens: `http://` (plain, private network) or `https://` (re-encrypted with ringmaster\'s certificate).'),
  weight: z.number().int().min(1).max(1000).default(1).describe('Relative share for the weighted policies (and SRV weight).'),
  priority: z.number().int().min(0).max(65535).default(0).describe('Tier, SRV semantics: members of a higher number are used only while no member of a lower one is eligible.'),
  maxInFlight: z.number().int().min(1).optional().describe('Most requests sent to this member at once; a full member is not eligible. Default: unlimited.'),
  compileSlots: z.number().int().min(1).max(1000).optional().describe("Catalog compiles this member runs at once (its JRuby count). Default: what the member reports (`capacity.discover`), else the pool's `capacity.compileSlots`."),
  drain: z.boolean().default(false).describe('Start drained: the member gets no new requests.'),
});

const activeHealth = z.strictObject({
  enabled: z.boolean().default(true).describe('Probe each member.'),
  path: z.string().startsWith('/').default('/status/v1/simple').describe('Path probed with GET; 2xx is healthy.'),
  interval: duration('interval').prefault('5s').describe('Time between probes of one member.'),
  timeout: duration('timeout').prefault('2s').describe('A probe not answered within this is a failure.'),
  rise: z.number().int().min(1).max(100).default(2).describe('Consecutive successes that make an unhealthy member healthy.'),
  fall: z.number().int().min(1).max(100).default(2).describe('Consecutive failures that make a healthy member unhealthy.'),
});

const passiveHealth = z.strictObject({
  enabled: z.boolean().default(true).describe('Eject members that fail real requests.'),
  failures: z.number().int().min(1).max(100).default(1).describe('Consecutive failed requests (connection errors, `statuses`) that eject a member.'),
  statuses: z.array(z.number().int().min(500).max(599)).default([502, 504]).describe("Response statuses counted as failures. 500 is not in the default: Puppet answers 500 for one node's broken manifest, which says nothing about the compiler. 503 is overload, handled by capacity."),
  coolOff: duration('coolOff').prefault('30s').describe('How long an ejected member gets no requests before it is tried again.'),
});

const upstreamTls = z.strictObject({
  verify: z.boolean().default(true).describe("Verify an https:// member's certificate against `ca` (default: ringmaster's CA) and its host name."),
  ca: z.string().optional().describe('PEM file of the CA that signs the members\' certificates. Default: ringmaster\'s own CA.'),
  serverName: z.string().optional().describe('Name expected in the members\' certificates (and sent as SNI) instead of the URL host.'),
  clientCert: z.boolean().default(true).describe("Present ringmaster's own certificate to https:// members."),
});

const seconds = z.number().int().min(0).max(86_400);
const capacity = z
  .strictObject({
    compileSlots: z.number().int().min(1).max(1000).optional().describe('Compile slots of a member that neither sets `compileSlots` nor reports its JRuby count. Default: not limited (compiles are then not queued).'),
    discover: z.boolean().default(true).describe("Read each member's JRuby count from `/status/v1/services/jruby-metrics?level=debug` with every active health probe (puppetserver allows it without a certificate)."),
    maxQueue: z.number().int().min(0).max(1_000_000).default(1000).describe('Compiles that may wait for a slot; one more is answered 503 `RM_QUEUE_FULL`.'),
    queueTimeout: duration('queueTimeout').prefault('60s').describe('Longest wait for a compile slot; then 503 `RM_QUEUE_TIMEOUT` (agents wait up to 10 minutes for the answer, `http_read_timeout`).'),
    slowStart: duration('slowStart').prefault('60s').describe('A member that comes back (healthy again, end of an ejection, enabled after a drain) or is added takes one compile to measure itself, then ramps to all its compile slots over this time. The ramp ends early once its compile time is within 25% of the warm members\' average, and holds nothing back while no warm member is eligible (then it would only make compiles wait). `0s` turns it off.'),
    reserve: z.number().int().min(0).max(1000).default(0).describe("JRubies of each member kept free of catalog compiles for the member's other requests (pluginsync, file metadata and content, node, reports), which on puppetserver borrow a JRuby too and otherwise wait behind compiles of seconds when every JRuby compiles. A member compiles at most its JRubies less this, and at least one. Costs that share of compile capacity: worth it with 4 or more JRubies per member."),
    retryAfter: z
      .strictObject({
        min: seconds.default(10).describe('Lowest Retry-After (seconds) of an overload 503.'),
        max: seconds.default(120).describe('Highest Retry-After (seconds); each 503 draws uniformly in between, so a herd comes back spread out.'),
      })
      .prefault({})
      .refine((r) => r.max >= r.min, { message: 'max must be at least min', path: ['max'] }),
  });

const pool = z.strictObject({
  members: z
    .array(member)
    .superRefine((members, ctx) => {
      const seen = new Set<string>();
      members.forEach((m, i) => {
        if (seen.has(m.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `member name ${m.name} is used twice in this pool` });
        seen.add(m.name);
      });
    })
    .default([])
    .describe('The compilers (or CA servers) of this pool.'),
  policy: z
    .enum(['least-time', 'least-in-flight', 'round-robin', 'weighted-round-robin', 'power-of-two', 'consistent-hash'])
    .default('least-time')
    .describe('How a member is chosen among the eligible ones of the lowest tier. `least-time` (default) sends a compile where it is expected to finish first, from each member\'s moving average compile time: to a free slot, or, when a faster member will free one sooner than a slower member would compile, it waits for that one; other requests go to the least loaded member with a free JRuby; `consistent-hash` keeps each certname on one member.'),
  healthCheck: z
    .strictObject({ active: activeHealth.prefault({}), passive: passiveHealth.prefault({}) })
    .prefault({})
    .describe('Active probes and passive ejection.'),
  upstreamTls: upstreamTls.prefault({}),
  timeouts: z
    .strictObject({
      connect: duration('connect').prefault('5s').describe('Time to open a connection (and finish TLS) to a member.'),
      idle: duration('idle').prefault('60s').describe('Longest silence while a response body is streaming.'),
      keepAlive: duration('keepAlive').prefault('4s').describe('How long an idle upstream connection is kept for reuse; keep it below the member\'s own idle timeout so a reused connection is never one the member is closing.'),
    })
    .prefault({}),
  retry: z
    .strictObject({
      attempts: z.number().int().min(0).max(10).default(2).describe('Further members tried when one fails before answering (refused, reset, TLS failure); only GET, HEAD and catalog POST.'),
      bufferLimit: size('bufferLimit').prefault('4MiB').describe('Request bodies up to this size are kept so a catalog POST can be retried; larger ones are streamed and not retried.'),
    })
    .prefault({}),
  retryAfter: duration('retryAfter').prefault('15s').describe('Retry-After sent with the 503 when no member is eligible.'),
  capacity: capacity.prefault({}).describe('Compile capacity: catalog compiles go to a member only while it has a free compile slot by ringmaster\'s own count; the rest wait in the pool\'s queue. Other requests never wait in it.'),
});

const methodName = z.enum(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

const routeMatch = z.strictObject({
  path: z.string().startsWith('/').optional().describe('Path prefix, e.g. `/puppet/v3/`.'),
  pathPattern: regex.optional().describe('Regular expression the path must match, e.g. `^/puppet/v3/(catalog|node)/`.'),
  methods: z.array(methodName).min(1).optional().describe('HTTP methods.'),
  environments: z.array(z.string().min(1)).min(1).optional().describe('Values of the `environment` query parameter; `*` globs allowed.'),
  certnames: z.array(z.string().min(1)).min(1).optional().describe('Verified client certnames; exact, or with `*` globs such as `*.dmz.example.com`.'),
  certnamePattern: regex.optional().describe('Regular expression the verified certname must match.'),
  extensions: z
    .record(
      z.string().refine((k) => resolveOid(k) !== undefined, 'a Puppet extension short name (pp_role, pp_environment, …) or a dotted OID'),
      z.union([z.string(), z.array(z.string()).min(1)]),
    )
    .optional()
    .describe('Certificate extensions the verified client certificate must carry, by short name or OID; a list means any of its values; `*` globs allowed.'),
});

const route = z.strictObject({
  name: name.optional().describe('Route name for logs and metrics. Default: `route<N>`.'),
  match: routeMatch.prefault({}).describe('Every condition given must hold; a route without conditions matches everything.'),
  to: z
    .union([
      z.strictObject({ pool: name.describe('Send to this pool.') }),
      z.strictObject({ service: z.enum(['ca', 'status']).describe('A built-in service: the CA API or the local status endpoint.') }),
    ])
    .describe('Where matching requests go.'),
  canary: z
    .strictObject({
      pool: name.describe('The canary pool.'),
      certnames: z.array(z.string().min(1)).default([]).describe('Certnames (globs allowed) always sent to the canary pool.'),
      percent: z.number().min(0).max(100).default(0).describe('Stable share of all certnames (by hash) sent to the canary pool.'),
    })
    .optional()
    .describe('Send some agents of this route to another pool.'),
  timeouts: z
    .strictObject({
      responseHead: duration('responseHead').prefault('10m').describe("Time a member may take before the response head; compiles can take minutes, and agents wait 10 minutes (http_read_timeout)."),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxBodyBytes: size('maxBodyBytes').prefault('256MiB').describe('Largest request body; larger ones get 413.'),
      maxHeaderBytes: size('maxHeaderBytes').optional().describe("Largest request head for this route (at most the listener's); larger ones get 431."),
    })
    .prefault({}),
});

// ---- the admin API: pools, member drain, members added at run time ----

const admin = z.strictObject({
  enabled: z.boolean().default(true).describe('Serve the admin API (`/admin/v1/`: pools, member drain and enable, members added at run time) that `ringmaster member` uses. Changing this section needs a restart.'),
  address: z.string().min(1).default('127.0.0.1').describe('Address the admin API binds. Loopback by default: the CLI on this host.'),
  port: z.number().int().min(0).max(65535).default(8150).describe('TCP port of the admin API (HTTPS); 0 lets the kernel pick one. The CLI finds it in `<stateDir>/admin.json`.'),
  allow: z.array(z.string().min(1)).default([]).describe("Certnames (`*` globs allowed) admitted besides ringmaster's own certificate and certificates carrying pp_cli_auth."),
  tokenFile: z.string().optional().describe('A file holding a bearer token (surrounding whitespace ignored) that also admits a request (`Authorization: Bearer <token>`); relative to the config file. Read on each request, so it can be rotated without a restart.'),
});

// ---- the DNS responder: SRV and A/AAAA answers for the Puppet service names, from live health ----

const domainName = z.string().refine(isConfigName, 'a DNS name: labels of letters, digits, "-" and "_" (1–63 characters each), "@" for the zone itself, a trailing "." for an absolute name');
const ipAddress = z.string().refine(isAddress, 'an IPv4 or IPv6 address');
const srvNumber = z.number().int().min(0).max(65535);
const port = z.number().int().min(1).max(65535);
const ttlSeconds = (what: string) => duration(what).refine((ms) => ms <= 2_147_483_647_000, `${what}: at most 2^31-1 seconds`);

const dnsHost = z.strictObject({
  addresses: z.array(ipAddress).default([]).describe('Its IPv4 and IPv6 addresses: answered for its name (A, AAAA) when the name is in the zone, and added to SRV answers that name it.'),
  port: port.optional().describe("Port of its Puppet service: the SRV port of entries naming it, and the port probed. Default: 8140; for `check: self`, the port of ringmaster's first listener."),
  check: z
    .enum(['status', 'self', 'none'])
    .default('status')
    .describe("How its health is known. `status`: GET `https://<name>:<port>/status/v1/simple` every `dns.healthCheck.interval` (another ringmaster instance or a Puppet Server; connects to its first address when it has one). `self`: this ringmaster instance, healthy while its gateway is running. `none`: always healthy."),
});

const srvHostTarget = z.strictObject({
  host: domainName.describe('A name from the zone\'s `hosts`.'),
  priority: srvNumber.default(0).describe('SRV priority: agents use the lowest number that answers. For a pool, added to each member\'s own `priority` (its tier).'),
  weight: srvNumber.default(5).describe('SRV weight: agents spread over one priority in proportion to it. Default: 5 for a host; each member\'s `weight` for a pool.'),
  port: port.optional().describe('SRV port. Default: the host\'s `port`; for a pool, the port of each member URL (set it to the compilers\' own TLS port when agents talk to them directly).'),
});

const srvPoolTarget = z.strictObject({
  pool: name.describe("A pool: one SRV record per member (the member URL's host and port), present while the member is healthy and not draining."),
  priority: srvNumber.default(0).describe('SRV priority: agents use the lowest number that answers. For a pool, added to each member\'s own `priority` (its tier).'),
  weight: srvNumber.optional().describe('SRV weight: agents spread over one priority in proportion to it. Default: 5 for a host; each member\'s `weight` for a pool.'),
  port: port.optional().describe('SRV port. Default: the host\'s `port`; for a pool, the port of each member URL (set it to the compilers\' own TLS port when agents talk to them directly).'),
});

const srvEntry = z.strictObject({
  service: z.enum(['x-puppet', 'x-puppet-ca', 'x-puppet-report', 'x-puppet-fileserver']).describe('Agent service: `x-puppet` (catalogs, files, and every service without its own records), `x-puppet-ca`, `x-puppet-report`, `x-puppet-fileserver`.'),
  domain: domainName.default('@').describe("The agents' `srv_domain` (relative to the zone, e.g. `site-a`, or absolute); the record is `_<service>._tcp.<domain>`."),
  targets: z.array(z.union([srvHostTarget, srvPoolTarget])).min(1).describe('A host of the zone (`host:`) or every member of a pool (`pool:`).'),
});

const dnsZone = z.strictObject({
  name: domainName.describe('The zone, e.g. `example.com`: ringmaster answers authoritatively for it and every name under it.'),
  ttl: ttlSeconds('ttl').prefault('10s').describe('TTL of every record; short, so that caches drop an unhealthy target soon.'),
  ns: z.array(domainName).min(1).describe('Name servers of the zone (NS records); their addresses come from `hosts`.'),
  soa: z
    .strictObject({
      mname: domainName.optional().describe('Primary name server. Default: the first `ns`.'),
      rname: domainName.default('hostmaster').describe('Mailbox of the person responsible, as a name (`hostmaster` is hostmaster@<zone>).'),
      serial: z.number().int().min(1).max(4_294_967_295).optional().describe('SOA serial. Default: derived from the zone\'s configuration, so instances with the same configuration agree.'),
      refresh: ttlSeconds('refresh').prefault('1h').describe('SOA refresh.'),
      retry: ttlSeconds('retry').prefault('10m').describe('SOA retry.'),
      expire: ttlSeconds('expire').prefault('7d').describe('SOA expire.'),
      minimum: ttlSeconds('minimum').prefault('10s').describe('How long resolvers cache "no such name" and "no such record" answers.'),
    })
    .prefault({}),
  hosts: z.record(domainName, dnsHost).default({}).describe('The machines that serve Puppet (ringmaster instances, Puppet Servers) and the name servers, by name.'),
  names: z
    .record(
      domainName,
      z.strictObject({
        hosts: z.array(domainName).default([]).describe('Hosts of the zone whose addresses are answered while they are healthy.'),
        pools: z.array(name).default([]).describe('Pools whose members\' addresses (member URLs with an IP address) are answered while they are healthy and not draining.'),
      }),
    )
    .default({})
    .describe('A and AAAA names (e.g. `puppet`) answered with the addresses of their healthy targets only, rotated between answers; all of them when none is healthy.'),
  srv: z.array(srvEntry).default([]).describe('SRV records for the agents\' `use_srv_records`; unhealthy or draining targets are left out, all of them are kept when none is healthy.'),
});

const dns = z.strictObject({
  enabled: z.boolean().default(false).describe('Run the DNS responder. `ringmaster dns zonefile` works without it. Changing this section needs a restart.'),
  address: z.string().min(1).default('0.0.0.0').describe('Address the responder binds, UDP and TCP; "::" for every IPv4 and IPv6 address.'),
  port: z.number().int().min(0).max(65535).default(53).describe('UDP and TCP port; 0 lets the kernel pick one (logged at start).'),
  zones: z.array(dnsZone).default([]).describe('Zones answered authoritatively; names outside them are REFUSED.'),
  healthCheck: z
    .strictObject({
      interval: duration('interval').prefault('5s').describe('Time between probes of one `check: status` host.'),
      timeout: duration('timeout').prefault('2s').describe('A probe not answered within this is a failure.'),
      rise: z.number().int().min(1).max(100).default(2).describe('Consecutive successes that bring an unhealthy host back.'),
      fall: z.number().int().min(1).max(100).default(1).describe('Consecutive failures that take a host out of the answers (1: within one interval).'),
      verify: z.boolean().default(true).describe("Verify the probed host's certificate against ringmaster's CA and its name."),
    })
    .prefault({}),
  rateLimit: z
    .strictObject({
      perSecond: z.number().min(0).max(1_000_000).default(100).describe('UDP queries answered per second for one source address (a token bucket); 0 turns the limit off. Over it, queries are dropped, so the responder cannot be used to amplify traffic.'),
      burst: z.number().int().min(1).max(1_000_000).default(200).describe('Queries a source may send at once before the rate applies.'),
      slip: z.number().int().min(0).max(10).default(2).describe('Every Nth limited query gets an empty truncated answer (TC) instead of silence, so a real client behind a busy address retries over TCP; 0 never.'),
      maxSources: z.number().int().min(100).max(10_000_000).default(100_000).describe('Source addresses tracked at once; the oldest are forgotten first.'),
    })
    .prefault({}),
  maxUdpSize: z.number().int().min(512).max(4096).default(1232).describe('Largest UDP answer, and the EDNS0 buffer size advertised; a client advertising less gets at most its size (512 without EDNS0). Larger answers are truncated (TC) so the client retries over TCP.'),
  tcp: z
    .strictObject({
      idleTimeout: duration('idleTimeout').prefault('10s').describe('A TCP connection with no query for this long is closed.'),
      maxConnections: z.number().int().min(1).max(100_000).default(256).describe('TCP connections at once; more are refused.'),
    })
    .prefault({}),
});

// ---- reports: captured at the front door into the reports store ----

const reports = z.strictObject({
  enabled: z.boolean().default(true).describe('Keep the reports agents send (`PUT /puppet/v3/report/<certname>`) in `<stateDir>/reports.sqlite`, for `ringmaster reports` and the admin API. A store that cannot be opened is logged and ringmaster runs without it. Changing this section needs a restart.'),
  forward: z
    .union([z.enum(['route', 'none']), z.strictObject({ pool: name.describe('Send every report to this pool.') })])
    .default('route')
    .describe('Where a report goes besides the store. `route`: on along the routes like any request (to `compilers` with the default routes), so PuppetDB and other report processors keep working. `{ pool: NAME }`: to that pool. `none`: nowhere; ringmaster answers the agent 200 itself, as puppetserver does.'),
  retention: z
    .strictObject({
      maxAge: duration('maxAge').prefault('14d').describe('Reports received longer ago than this are deleted.'),
      maxCount: z.number().int().min(1).max(100_000_000).default(100_000).describe('Only the newest this many reports are kept.'),
      pruneInterval: duration('pruneInterval').prefault('10m').refine((ms) => ms >= 1000, 'pruneInterval: at least 1s').describe('How often reports past `maxAge` or `maxCount` are deleted (in batches of 500, between requests).'),
    })
    .prefault({})
    .describe('Which reports are kept: both limits apply.'),
  queue: z
    .strictObject({
      maxReports: z.number().int().min(1).max(1_000_000).default(1000).describe('Reports waiting to be stored; past it a report is not stored (counted as dropped). The agent\'s request is never affected.'),
      maxBytes: size('maxBytes').prefault('64MiB').describe('Bytes of report bodies waiting to be stored; a report that would pass it is not stored (counted as dropped).'),
    })
    .prefault({})
    .describe('Reports received but not yet stored, held in memory.'),
});

// ---- the access log: one line per request, apart from the service log ----

const accessLog = z.strictObject({
  enabled: z.boolean().default(false).describe('Write one line per agent request (time, certname, client address, method, path without its query, route, pool, member, status, bytes, upstream and queue time, retries, `RM_*` code). Never headers, query strings or bodies. Changing this section needs a restart.'),
  destination: z.string().min(1).default('stdout').describe('`stdout`, or a file path (relative to the config file) appended to; `ringmaster reload` (SIGHUP) reopens it, for logrotate.'),
  format: z.enum(['json', 'text']).default('json').describe('JSON lines, or one text line per request in the style of a web server\'s access log.'),
});

export const configSchema = z
  .strictObject({
  stateDir: z.string().optional().describe('Directory holding all state. Default: `./var`, or `--state-dir`.'),
  server: z
    .strictObject({
      certname: certname.optional().describe("ringmaster's own certificate name. Default: the host's name, lower-cased."),
      dnsAltNames: z.array(dnsName).optional().describe("Subject alternative names on ringmaster's server certificate. Default: the host's names plus `puppet`."),
    })
    .prefault({}),
  listeners: z.array(listener).min(1).prefault([{}]).describe('HTTPS listeners agents connect to.'),
  ca: ca.prefault({}),
  pools: z.record(name, pool).default({}).describe('Pools of members by name. The default routes send `/puppet/v3/` to the pool named `compilers`.'),
  routes: z.array(route).default([]).describe('Ordered routes, tried before the default ones; the first match wins.'),
  defaultRoutes: z.boolean().default(true).describe('Append the default routes: `/puppet-ca/` to the CA, `/status/v1/simple` answered locally, `/puppet/v3/` to `compilers`.'),
  shutdown: z
    .strictObject({
      drainTimeout: duration('drainTimeout').prefault('60s').describe('On SIGTERM, how long requests in flight may take to finish before their connections are closed.'),
    })
    .prefault({}),
  admin: admin.prefault({}).describe('The admin API: HTTPS with client certificates verified against the CA, or a bearer token.'),
  reports: reports.prefault({}).describe('Reports: what agents send after each run, kept for `ringmaster reports` and the admin API, and forwarded or answered.'),
  dns: dns.prefault({}).describe('The DNS responder: SRV, A and AAAA answers for the Puppet service names that follow live health.'),
  accessLog: accessLog.prefault({}).describe('The access log of agent requests (the admin API is not in it). `/metrics` on the admin API has the same requests as counters.'),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info').describe('Log level.'),
      format: z.enum(['json', 'text']).default('json').describe('JSON lines, or text for a terminal.'),
    })
    .prefault({}),
  })
  .superRefine((c, ctx) => {
    c.routes.forEach((r, i) => {
      if ('pool' in r.to && !(r.to.pool in c.pools)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'to', 'pool'], message: `no pool named ${r.to.pool}` });
      if (r.canary && !(r.canary.pool in c.pools)) ctx.addIssue({ code: 'custom', path: ['routes', i, 'canary', 'pool'], message: `no pool named ${r.canary.pool}` });
    });
    if (typeof c.reports.forward === 'object' && !(c.reports.forward.pool in c.pools)) ctx.addIssue({ code: 'custom', path: ['reports', 'forward', 'pool'], message: `no pool named ${c.reports.forward.pool}` });
    for (const p of dnsZoneProblems(c.dns.zones, new Set(Object.keys(c.pools)))) ctx.addIssue({ code: 'custom', path: ['dns', ...p.path], message: p.message });
    if (!c.ca.enabled && c.ca.external === undefined) ctx.addIssue({ code: 'custom', path: ['ca', 'external'], message: 'ca.enabled: false needs ca.external (the pool of the external CA and its certificate file)' });
    if (c.ca.enabled && c.ca.external !== undefined) ctx.addIssue({ code: 'custom', path: ['ca', 'external'], message: 'ca.external is only used with ca.enabled: false' });
    if (c.ca.external && !(c.ca.external.pool in c.pools)) ctx.addIssue({ code: 'custom', path: ['ca', 'external', 'pool'], message: `no pool named ${c.ca.external.pool}` });
    if (c.dns.enabled && c.dns.zones.length === 0) ctx.addIssue({ code: 'custom', path: ['dns', 'zones'], message: 'the DNS responder (dns.enabled) needs at least one zone' });
  });

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type ConfigProblem = { path: string; message: string };

export function validateConfig(input: unknown): { ok: true; config: ParsedConfig } | { ok: false; problems: ConfigProblem[] } {
  const result = configSchema.safeParse(input ?? {});
  if (result.success) return { ok: true, config: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) => ({
      path: issue.path.length === 0 ? '(root)' : issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, ''),
      message: issue.message,
    })),
  };
}

/** The JSON Schema of the file as operators write it, for the reference page. */
export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}

export function defaultHostNames(): string[] {
  const h = hostname().toLowerCase();
  const short = h.split('.')[0] ?? h;
  return [...new Set([h, short])];
}

// ---- admin API inputs and the run-time member file, validated with the same member schema ----

export type Checked<T> = { ok: true; value: T } | { ok: false; problems: ConfigProblem[] };

function check<S extends z.ZodType>(schema: S, input: unknown): Checked<z.output<S>> {
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data };
  return {
    ok: false,
    problems: result.error.issues.map((issue) => ({
      path: issue.path.length === 0 ? '(root)' : issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, ''),
      message: issue.message,
    })),
  };
}

/** `PUT /admin/v1/pools/{pool}/members/{member}`: the member's fields; its name is in the path. `drain` omitted keeps the current state. */
const adminMemberBody = member.omit({ name: true, drain: true }).extend({ drain: z.boolean().optional() });
export type AdminMemberBody = z.output<typeof adminMemberBody>;
export const validateAdminMember = (input: unknown): Checked<AdminMemberBody> => check(adminMemberBody, input);

/** `POST …/drain`: `wait` answers once the member has nothing in flight, or after `timeout`. */
const drainRequest = z.strictObject({
  wait: z.boolean().default(false),
  timeout: duration('timeout').prefault('10m').refine((ms) => ms > 0 && ms <= 86_400_000, 'timeout: between 1ms and 24h'),
});
export type DrainRequest = z.output<typeof drainRequest>;
export const validateDrainRequest = (input: unknown): Checked<DrainRequest> => check(drainRequest, input ?? {});

/**
 * `<stateDir>/members.json`: members added at run time (whole member entries) and drain
 * decisions on the file's members, each with the file's `drain` value it was made against.
 */
const memberOverlay = z.strictObject({
  version: z.literal(1),
  pools: z.record(
    name,
    z.strictObject({
      members: z.array(member).default([]),
      drain: z.record(name, z.strictObject({ draining: z.boolean(), config: z.boolean() })).default({}),
    }),
  ),
});
export type MemberOverlay = z.output<typeof memberOverlay>;
export const validateMemberOverlay = (input: unknown): Checked<MemberOverlay> => check(memberOverlay, input);

/** Pool and member names as the schema allows them. */
export const isName = (value: string): boolean => name.safeParse(value).success;
