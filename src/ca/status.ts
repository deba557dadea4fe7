import { oidToShortName, ppAuthCertExt, isUnder } from './oids.ts';
import type { ParsedCert, ParsedCsr, SubjectAltName, Fingerprints, CertExtension } from './x509.ts';

// certificate_status JSON, field for field as puppetserver answers it, so the `puppetserver ca`
// CLI and Foreman's smart-proxy read ringmaster's answers unchanged.

export type CertState = 'requested' | 'signed' | 'revoked';

export type CertStatus = {
  name: string;
  state: CertState;
  dns_alt_names: string[];
  subject_alt_names: string[];
  authorization_extensions: Record<string, string>;
  fingerprint: string;
  fingerprints: Fingerprints & { default: string };
  serial_number?: number | string;
  not_before?: string;
  not_after?: string;
};

/** puppetserver's date format: 2029-05-01T12:00:00UTC. */
export function formatPuppetDate(d: Date): string {
  return `${d.toISOString().slice(0, 19)}UTC`;
}

function altNames(sans: SubjectAltName[]): { dns: string[]; all: string[] } {
  const dns = sans.filter((s) => s.type === 'dns').map((s) => `DNS:${s.value}`);
  const ip = sans.filter((s) => s.type === 'ip').map((s) => `IP:${s.value}`);
  return { dns, all: [...ip, ...dns] };
}

function authorizationExtensions(exts: CertExtension[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of exts) {
    if (isUnder(e.oid, ppAuthCertExt)) out[oidToShortName.get(e.oid) ?? e.oid] = e.text ?? Buffer.from(e.der).toString('hex');
  }
  return out;
}

export function csrStatus(name: string, csr: ParsedCsr): CertStatus {
  const sans = altNames(csr.subjectAltNames);
  return {
    name,
    state: 'requested',
    dns_alt_names: sans.dns,
    subject_alt_names: sans.all,
    authorization_extensions: authorizationExtensions(csr.extensionRequests),
    fingerprint: csr.fingerprints.SHA256,
    fingerprints: { ...csr.fingerprints, default: csr.fingerprints.SHA256 },
  };
}

export function certStatus(name: string, cert: ParsedCert, revoked: boolean): CertStatus {
  const sans = altNames(cert.subjectAltNames);
  // JSON numbers lose precision past 2^53; a serial that large is sent as a decimal string.
  const serial = cert.serial <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(cert.serial) : cert.serial.toString();
  return {
    name,
    state: revoked ? 'revoked' : 'signed',
    dns_alt_names: sans.dns,
    subject_alt_names: sans.all,
    authorization_extensions: authorizationExtensions(cert.extensions),
    fingerprint: cert.fingerprints.SHA256,
    fingerprints: { ...cert.fingerprints, default: cert.fingerprints.SHA256 },
    serial_number: serial,
    not_before: formatPuppetDate(cert.notBefore),
    not_after: formatPuppetDate(cert.notAfter),
  };
}
