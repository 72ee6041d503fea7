// Small DOM helpers shared by the page's modules.

export const $ = (id) => document.getElementById(id);

let busy = 0;
/** Shows the progress bar while `promise` runs (nested calls stack). */
export async function withProgress(promise) {
  busy += 1;
  $('progress').hidden = false;
  try {
    return await promise;
  } finally {
    busy -= 1;
    if (busy === 0) $('progress').hidden = true;
  }
}

export function formatBytes(n) {
  if (n == null) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** One line for an error from the tunnel (or anything else thrown). */
export function describeError(error) {
  if (error && error.name === 'HometunError') return `${error.message} [${error.code}]`;
  return String(error && error.message ? error.message : error);
}

/** Appends a line to a console <pre>, keeping it scrolled to the end. */
export function appendLine(pre, text) {
  pre.textContent += `${text}\n`;
  pre.scrollTop = pre.scrollHeight;
}
