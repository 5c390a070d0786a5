/**
 * tls: certificates for routes' hosts. Uploaded ones are checked (key, host, dates, chain) and kept;
 * ACME ones (any RFC 8555 CA, HTTP-01 answered by the ingress's nginx) are issued and renewed at 2/3
 * of their lifetime with backoff. Private keys are sealed in `DATA/tls.db` with the secrets' key and
 * written for nginx only as root-owned 0600 files under the run directory.
 */
export { CertManager, type CertManagerOptions } from './cert-manager.ts';
export { CertStore, type StoredCert, type CertSource } from './cert-store.ts';
export { AcmeIssuer, AcmeFailed, ChallengeDir, type CertIssuer, type IssuedCert } from './acme-issuer.ts';
export { checkUpload, readCertInfo, renewalDue, retryDelay, type CertInfo } from './cert-info.ts';
export { ClusterCa, checkIssued, type TlsMaterial } from './cluster-ca.ts';
