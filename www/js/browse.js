// The "Open" tab: fetches a LAN page through the tunnel and shows it in a sandboxed frame.
//
// The frame gets the page as `srcdoc` with scripts disabled (sandbox without allow-scripts).
// Images and stylesheets are fetched through the tunnel too and inlined as data: URLs, since
// the frame itself cannot reach the LAN. Links clicked in the frame open through the tunnel.
import { $, withProgress, describeError } from './ui.js';

const MAX_RESOURCES = 60;
// What one snapshot may take into the launcher's memory, its page and what it inlines together
// (an image or stylesheet at most MAX_RESOURCE): a LAN host that sends without end would
// otherwise take the tab, and the tunnel every app shares, down with it.
const MAX_PAGE = 16 << 20;
const MAX_RESOURCE = 4 << 20;
const MAX_FILE = 512 << 20;
const PARALLEL = 4;
const CSS_URL = /url\(\s*(['"]?)([^'")]+)\1\s*\)/g;

let current = null;

function blobToDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
}

/** The body of `response` as a Blob; fails past `max` bytes, the rest left unread. */
async function bodyUpTo(response, max) {
  if (!response.body) return new Blob([]);
  const reader = response.body.getReader();
  const parts = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return new Blob(parts);
    size += value.byteLength;
    if (size > max) {
      reader.cancel().catch(() => {});
      throw new Error(`the answer is larger than ${max >> 20} MiB: not shown`);
    }
    parts.push(value);
  }
}

/** The body of `response` within what `budget` has left (and `MAX_RESOURCE`), taken from it. */
async function resourceBody(response, budget) {
  // Set aside before reading (fetches run side by side), what was not used given back after.
  const allowed = Math.max(0, Math.min(MAX_RESOURCE, budget.bytes));
  budget.bytes -= allowed;
  try {
    const blob = await bodyUpTo(response, allowed);
    budget.bytes += allowed - blob.size;
    return blob;
  } catch (error) {
    budget.bytes += allowed;
    throw error;
  }
}

/** Fetches `url` through the tunnel as a data: URL, or null when that fails. */
async function dataUrl(api, url, budget) {
  try {
    const response = await api.fetch(url);
    if (!response.ok) return null;
    return await blobToDataUrl(await resourceBody(response, budget));
  } catch {
    return null;
  }
}

async function inlineCss(api, css, base, budget) {
  const urls = [...new Set([...css.matchAll(CSS_URL)].map((m) => m[2]).filter((u) => !u.startsWith('data:')))];
  for (const ref of urls.slice(0, budget.left)) {
    budget.left -= 1;
    let absolute;
    try { absolute = new URL(ref, base).href; } catch { continue; }
    if (!absolute.startsWith('http:')) continue;
    const data = await dataUrl(api, absolute, budget);
    if (data) css = css.split(ref).join(data);
  }
  return css;
}

async function runLimited(tasks) {
  const queue = tasks.slice();
  const workers = Array.from({ length: PARALLEL }, async () => {
    while (queue.length) await queue.shift()();
  });
  await Promise.all(workers);
}

/** Rewrites `doc` so it needs nothing from the network, within `budget`. */
async function inlineResources(api, doc, base, budget) {
  doc.querySelectorAll('script, base, iframe, frame, frameset, object, embed').forEach((el) => el.remove());
  // The snapshot has the launcher's origin (it is a srcdoc): it frames nothing, so no page
  // shown here can frame an app that allows only the launcher.
  const policy = doc.createElement('meta');
  policy.httpEquiv = 'Content-Security-Policy';
  policy.content = "frame-src 'none'; child-src 'none'";
  doc.head.prepend(policy);
  const tasks = [];
  for (const img of doc.querySelectorAll('img[src], input[type="image"][src]')) {
    img.removeAttribute('srcset');
    const src = new URL(img.getAttribute('src'), base).href;
    if (!src.startsWith('http:') || budget.left-- <= 0) continue;
    tasks.push(async () => { const data = await dataUrl(api, src, budget); if (data) img.setAttribute('src', data); });
  }
  for (const link of doc.querySelectorAll('link[rel~="stylesheet"][href]')) {
    const href = new URL(link.getAttribute('href'), base).href;
    if (!href.startsWith('http:') || budget.left-- <= 0) { link.remove(); continue; }
    tasks.push(async () => {
      try {
        const response = await api.fetch(href);
        const style = doc.createElement('style');
        style.textContent = await inlineCss(api, await (await resourceBody(response, budget)).text(), href, budget);
        link.replaceWith(style);
      } catch {
        link.remove();
      }
    });
  }
  for (const style of doc.querySelectorAll('style')) {
    tasks.push(async () => { style.textContent = await inlineCss(api, style.textContent, base, budget); });
  }
  await runLimited(tasks);
}

function showInFrame(html, base) {
  const frame = $('browse-frame');
  frame.srcdoc = html;
  frame.onload = () => {
    const doc = frame.contentDocument;
    if (!doc) return;
    doc.addEventListener('click', (event) => {
      const anchor = event.target.closest && event.target.closest('a[href]');
      if (!anchor) return;
      const href = anchor.getAttribute('href');
      if (href.startsWith('#')) return;
      event.preventDefault();
      let target;
      try { target = new URL(href, base).href; } catch { return; }
      $('browse-url').value = target;
      open(window.hometun, target);
    });
  };
}

async function render(api, response) {
  const type = (response.headers.get('content-type') || '').toLowerCase();
  const base = response.url;
  const text = async () => (await bodyUpTo(response, MAX_PAGE)).text();
  if (type.includes('html') || type === '') {
    const page = await bodyUpTo(response, MAX_PAGE);
    const doc = new DOMParser().parseFromString(await page.text(), 'text/html');
    await inlineResources(api, doc, base, { left: MAX_RESOURCES, bytes: MAX_PAGE - page.size });
    showInFrame(`<!doctype html>${doc.documentElement.outerHTML}`, base);
  } else if (type.startsWith('image/')) {
    const data = await blobToDataUrl(await bodyUpTo(response, MAX_PAGE));
    showInFrame(`<img src="${data}" alt="" style="max-width:100%">`, base);
  } else if (type.startsWith('text/') || type.includes('json') || type.includes('xml')) {
    showInFrame(`<pre style="white-space:pre-wrap">${escapeHtml(await text())}</pre>`, base);
  } else {
    const blob = await bodyUpTo(response, MAX_FILE);
    const link = URL.createObjectURL(blob);
    showInFrame(`<p>${escapeHtml(type)} · ${blob.size} bytes</p>`, base);
    $('browse-info').innerHTML = `<a href="${link}" download>Save the file</a>`;
  }
}

async function open(api, url) {
  const token = {};
  current = token;
  $('browse-info').textContent = `Opening ${url} …`;
  $('browse-raw').textContent = '';
  const started = performance.now();
  try {
    const response = await withProgress(api.fetch(url));
    if (current !== token) return;
    $('browse-raw').textContent = response.rawHeaders;
    await withProgress(render(api, response));
    const ms = Math.round(performance.now() - started);
    $('browse-info').textContent = `${response.status} ${response.statusText} · ${response.url}${response.redirected ? ' (redirected)' : ''} · ${ms} ms`;
  } catch (error) {
    if (current === token) $('browse-info').textContent = describeError(error);
  }
}

export function setupBrowser(api) {
  $('browse-form').addEventListener('submit', (event) => {
    event.preventDefault();
    let url = $('browse-url').value.trim();
    if (!/^[a-z]+:\/\//i.test(url)) url = `http://${url}`;
    open(api, url);
  });
}
