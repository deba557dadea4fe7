import * as x from './x509.ts';
const caKey = await x.generateKeyPair({ type: 'rsa', bits: 4096 });
const now = Date.now();
const caPem = await x.createCaCertificate({ commonName: 'Puppet CA: ca', keyPair: caKey, serial: 1n, notBefore: new Date(now - 86400e3), notAfter: new Date(now + 5 * 365 * 86400e3) });
const signer = await x.loadSigner(caPem, caKey.privateKeyPem);
const agentKey = await x.generateKeyPair({ type: 'rsa', bits: 2048 });
const csr = x.parseCsr(await x.createCsr({ commonName: 'agent1.example.com', keyPair: agentKey, extensionRequests: [{ oid: '1.3.6.1.4.1.34380.1.1.13', value: 'webserver' }] }));
const issue = (i: number) => x.issueCertificate({ signer, commonName: 'agent1.example.com', publicKeySpki: csr.publicKeySpki, serial: BigInt(i + 2), notBefore: new Date(now), notAfter: new Date(now + 1e10), subjectAltNames: [{ type: 'dns', value: 'agent1.example.com' }], copyExtensions: csr.extensionRequests });
for (let i = 0; i < 300; i++) await issue(i);
