import { RingmasterError } from '../lib/errors.ts';
import { isUnder, oids, ppAuthCertExt, ppPrivCertExt, ppRegCertExt } from './oids.ts';
import { verifyCsrSignature, type ParsedCsr, type SubjectAltName } from './x509.ts';

// puppetserver's CSR rules (validate-subject!, validate-csr, allowed-extension?). A CSR is checked
// twice: on submission, before anything is stored, and again before signing, because the policy
// (or a manual sign's flags) may differ between the two moments.

export type CsrPolicy = { allowSubjectAltNames: boolean; allowAuthorizationExtensions: boolean };

// puppetserver's ^[\p{Alnum}\-_]*[\p{Alnum}_]$, with \p{Alnum} read the Unicode way (letters and digits).
const labelPattern = /^[\p{Alphabetic}\p{Nd}\-_]*[\p{Alphabetic}\p{Nd}_]$/u;
const firstCharPattern = /^[\p{Alphabetic}\p{Nd}_]/u;
const unprintable = /[\p{Cc}\p{Cf}\p{Z}\s]/u;

export function validateCertname(name: string): void {
  const shown = JSON.stringify(name);
  const invalid = (rule: string): RingmasterError => new RingmasterError('RM_CA_CERTNAME_INVALID', `Certname ${shown} ${rule}`);
  if (name.length === 0) throw invalid('is empty');
  if (name.length > 255) throw invalid('is longer than 255 characters');
  if (unprintable.test(name)) throw invalid('contains whitespace or control characters');
  if (name.includes('/')) throw invalid("contains '/', which is not allowed");
  if (name !== name.toLowerCase()) throw invalid('is not lower case; certificate names must be lower case');
  if (name.includes('*')) throw invalid('contains a wildcard (*), which is not allowed');
  if (name.endsWith('-')) throw invalid("ends with '-', which is not allowed");
  const labels = name.split('.');
  if (labels.some((l) => l === '')) throw invalid("has an empty label (a leading, trailing or doubled '.')");
  if (!firstCharPattern.test(name)) throw invalid("must start with a letter, a digit or '_'");
  const bad = labels.find((l) => !labelPattern.test(l));
  if (bad !== undefined) throw invalid(`has the label ${JSON.stringify(bad)}: labels may hold only letters, digits, '-' and '_', and must not end with '-'`);
}

export async function checkSubmission(csr: ParsedCsr, urlName: string, policy: CsrPolicy): Promise<void> {
  const cn = csr.commonName;
  if (cn === undefined) throw new RingmasterError('RM_CA_CSR_SUBJECT_MISMATCH', `The CSR subject ${JSON.stringify(csr.subjectDn)} has no common name; it must be CN=${urlName}`);
  if (cn !== urlName) throw new RingmasterError('RM_CA_CSR_SUBJECT_MISMATCH', `Instance name ${JSON.stringify(cn)} does not match requested key ${JSON.stringify(urlName)}`);
  validateCertname(cn);
  if (!(await verifyCsrSignature(csr))) {
    throw new RingmasterError('RM_CA_CSR_SIGNATURE', `CSR '${cn}' contains a public key that does not correspond to the signing key`);
  }
  checkExtensions(csr, policy);
  // Attributes need no check: extReq is taken apart by parseCsr and any other custom attribute is allowed.
  checkAltNameTypes(csr);
}

export function checkSigning(csr: ParsedCsr, policy: CsrPolicy & { allowDnsAltNames: boolean }): void {
  checkExtensions(csr, policy);
  checkAltNameTypes(csr);
  const cn = csr.commonName ?? '';
  const beyondCn = csr.subjectAltNames.some((s) => !(s.type === 'dns' && s.value === cn));
  if (beyondCn && !policy.allowSubjectAltNames && !policy.allowDnsAltNames) {
    throw new RingmasterError('RM_CA_CSR_ALT_NAMES',
      `CSR '${cn}' contains subject alternative names (${csr.subjectAltNames.map(formatAltName).join(', ')}), which are disallowed. ` +
      'To allow subject alternative names, set ca.allowSubjectAltNames to true in the ringmaster configuration, ' +
      'or sign this request with --allow-dns-alt-names.');
  }
}

export function finalSubjectAltNames(csr: ParsedCsr, certname: string): SubjectAltName[] {
  // DNS names compare case-insensitively; a requested DNS:<certname> keeps its place in the list.
  const key = (s: SubjectAltName): string => `${s.type}:${s.type === 'dns' ? s.value.toLowerCase() : s.value}`;
  const seen = new Set<string>();
  return [...csr.subjectAltNames, { type: 'dns' as const, value: certname }].filter((s) => !seen.has(key(s)) && seen.add(key(s)));
}

function formatAltName(s: SubjectAltName): string {
  return `${s.type === 'dns' ? 'DNS' : 'IP'}:${s.value}`;
}

function checkExtensions(csr: ParsedCsr, policy: CsrPolicy): void {
  const cn = csr.commonName ?? '';
  const requested = csr.extensionRequests;
  if (requested.some((e) => e.oid === oids.ppCliAuth)) {
    throw new RingmasterError('RM_CA_CSR_EXTENSION_FORBIDDEN', `CSR '${cn}' requests pp_cli_auth (${oids.ppCliAuth}), which no certificate request may carry`);
  }
  const permitted = (oid: string): boolean => isUnder(oid, ppRegCertExt) || isUnder(oid, ppPrivCertExt) || isUnder(oid, ppAuthCertExt);
  const forbidden = requested.filter((e) => !permitted(e.oid)).map((e) => e.oid);
  if (forbidden.length > 0) throw new RingmasterError('RM_CA_CSR_EXTENSION_FORBIDDEN', `Found extensions that are not permitted: ${forbidden.join(', ')}`);
  if (!policy.allowAuthorizationExtensions && requested.some((e) => isUnder(e.oid, ppAuthCertExt))) {
    throw new RingmasterError('RM_CA_CSR_AUTH_EXTENSION',
      `CSR '${cn}' contains an authorization extension, which is disallowed. ` +
      'To allow authorization extensions, set ca.allowAuthorizationExtensions to true in the ringmaster configuration.');
  }
}

function checkAltNameTypes(csr: ParsedCsr): void {
  const cn = csr.commonName ?? '';
  if (csr.otherAltNames.length > 0) {
    throw new RingmasterError('RM_CA_CSR_ALT_NAMES',
      `CSR '${cn}' contains subject alternative names of a type other than DNS or IP (${csr.otherAltNames.join(', ')}); only DNS and IP names are allowed`);
  }
  const wildcard = csr.subjectAltNames.find((s) => s.value.includes('*'));
  if (wildcard) throw new RingmasterError('RM_CA_CSR_ALT_NAMES', `CSR '${cn}' subject alternative name ${formatAltName(wildcard)} contains a wildcard, which is not allowed`);
}
