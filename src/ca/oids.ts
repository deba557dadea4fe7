// Puppet's OID arc 1.3.6.1.4.1.34380 and the short names puppetserver maps them to.

export const puppetArc = '1.3.6.1.4.1.34380';
export const ppRegCertExt = `${puppetArc}.1.1`;
export const ppPrivCertExt = `${puppetArc}.1.2`;
export const ppAuthCertExt = `${puppetArc}.1.3`;

export const oids = {
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  crlNumber: '2.5.29.20',
  deltaCrlIndicator: '2.5.29.27',
  netscapeComment: '2.16.840.1.113730.1.13',
  extensionRequest: '1.2.840.113549.1.9.14',
  challengePassword: '1.2.840.113549.1.9.7',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ppAuthorization: `${ppAuthCertExt}.1`,
  ppAuthAutoRenew: `${ppAuthCertExt}.2`,
  ppAuthRole: `${ppAuthCertExt}.13`,
  ppCliAuth: `${ppAuthCertExt}.39`,
} as const;

const registered = [
  'pp_uuid', 'pp_instance_id', 'pp_image_name', 'pp_preshared_key', 'pp_cost_center', 'pp_product',
  'pp_project', 'pp_application', 'pp_service', 'pp_employee', 'pp_created_by', 'pp_environment',
  'pp_role', 'pp_software_version', 'pp_department', 'pp_cluster', 'pp_provisioner', 'pp_region',
  'pp_datacenter', 'pp_zone', 'pp_network', 'pp_securitypolicy', 'pp_cloudplatform', 'pp_apptier',
  'pp_hostname', 'pp_owner',
] as const;

/** Short name → OID for every Puppet extension name puppetserver knows. */
export const shortNameToOid: ReadonlyMap<string, string> = new Map<string, string>([
  ...registered.map((name, i): [string, string] => [name, `${ppRegCertExt}.${i + 1}`]),
  ['pp_authorization', oids.ppAuthorization],
  ['pp_auth_auto_renew', oids.ppAuthAutoRenew],
  ['pp_auth_role', oids.ppAuthRole],
  ['pp_cli_auth', oids.ppCliAuth],
]);

export const oidToShortName: ReadonlyMap<string, string> = new Map([...shortNameToOid].map(([k, v]) => [v, k]));

export function isUnder(oid: string, arc: string): boolean {
  return oid.startsWith(`${arc}.`);
}

/** Resolves a short name or a dotted OID to a dotted OID; undefined for anything else. */
export function resolveOid(nameOrOid: string): string | undefined {
  if (/^\d+(\.\d+)+$/.test(nameOrOid)) return nameOrOid;
  return shortNameToOid.get(nameOrOid);
}
