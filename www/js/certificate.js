// The relay's certificate as the relay reports it (/relay.json). When it is self-signed the
// page says plainly what that costs and shows the fingerprint to compare.
import { $ } from './ui.js';

/** Shows the certificate notice; resolves with /relay.json (null when it cannot be read). */
export async function showCertificate() {
  let relay = null;
  try {
    const response = await fetch('/relay.json', { cache: 'no-store' });
    if (response.ok) relay = await response.json();
  } catch (_) {
    return null; // Advice only: the page works without it.
  }
  const certificate = relay && relay.certificate;
  if (!certificate) return relay;
  document.body.dataset.certificate = certificate.kind;
  if (certificate.kind !== 'self-signed') return relay;
  $('cert-fingerprint').textContent = certificate.fingerprint;
  $('cert-notice').hidden = false;
  return relay;
}
