// The relay's certificate as the relay reports it (/relay.json). When it is self-signed the
// page says plainly what that costs and shows the fingerprint to compare.
import { $ } from './ui.js';

export async function showCertificate() {
  let certificate = null;
  try {
    const response = await fetch('/relay.json', { cache: 'no-store' });
    if (response.ok) certificate = (await response.json()).certificate;
  } catch (_) {
    return; // Advice only: the page works without it.
  }
  if (!certificate) return;
  document.body.dataset.certificate = certificate.kind;
  if (certificate.kind !== 'self-signed') return;
  $('cert-fingerprint').textContent = certificate.fingerprint;
  $('cert-notice').hidden = false;
}
