// The Ping, Lookup and TCP console tabs.
import { $, withProgress, describeError, appendLine } from './ui.js';

function setupTabs() {
  const tabs = document.querySelectorAll('.tabs [role="tab"]');
  for (const tab of tabs) {
    tab.addEventListener('click', () => {
      for (const other of tabs) {
        other.setAttribute('aria-selected', String(other === tab));
        $(`tab-${other.dataset.tab}`).hidden = other !== tab;
      }
    });
  }
}

function setupPing(api) {
  $('ping-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const out = $('ping-output');
    const host = $('ping-host').value.trim();
    const count = Number($('ping-count').value) || 4;
    out.textContent = '';
    appendLine(out, `PING ${host} (${count} echoes)`);
    try {
      const result = await withProgress(api.ping(host, { count }));
      result.rtts.forEach((rtt, i) => appendLine(out, rtt == null
        ? `seq=${i + 1} no reply`
        : `reply from ${result.address}: seq=${i + 1} time=${rtt.toFixed(2)} ms`));
      const got = result.rtts.filter((r) => r != null);
      const loss = Math.round(100 * (1 - got.length / result.sent));
      appendLine(out, `${result.sent} sent, ${result.received} received, ${loss}% loss`);
      if (got.length) {
        appendLine(out, `rtt min/avg/max = ${Math.min(...got).toFixed(2)}/${(got.reduce((a, b) => a + b, 0) / got.length).toFixed(2)}/${Math.max(...got).toFixed(2)} ms`);
      }
    } catch (error) {
      appendLine(out, describeError(error));
    }
  });
}

function setupLookup(api) {
  $('dns-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const out = $('dns-output');
    const name = $('dns-name').value.trim();
    out.textContent = '';
    try {
      const addresses = await withProgress(api.resolve(name));
      appendLine(out, `${name}:`);
      addresses.forEach((a) => appendLine(out, `  ${a}`));
    } catch (error) {
      appendLine(out, describeError(error));
    }
  });
}

const MAX_TCP_TEXT = 1 << 20;

function setupTcp(api) {
  const out = $('tcp-output');
  let connection = null;
  const setOpen = (open) => {
    $('tcp-connect-button').disabled = open;
    $('tcp-close-button').disabled = !open;
    $('tcp-line').disabled = !open;
    $('tcp-send-button').disabled = !open;
  };
  async function readLoop(conn) {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const bytes = await conn.receive();
        if (bytes === null) break;
        // The newest 1 MiB of text stays: a peer that sends without end cannot fill the tab.
        const shown = out.textContent + decoder.decode(bytes, { stream: true });
        out.textContent = shown.length > MAX_TCP_TEXT ? shown.slice(-MAX_TCP_TEXT) : shown;
        out.scrollTop = out.scrollHeight;
      }
      appendLine(out, '\n[connection closed by peer]');
    } catch (error) {
      appendLine(out, `\n[${describeError(error)}]`);
    }
    if (connection === conn) { connection = null; setOpen(false); }
  }
  $('tcp-connect-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const host = $('tcp-host').value.trim();
    const port = Number($('tcp-port').value);
    out.textContent = '';
    appendLine(out, `[connecting to ${host}:${port}]`);
    try {
      connection = await withProgress(api.connectTcp(host, port));
      appendLine(out, '[connected]');
      setOpen(true);
      $('tcp-line').focus();
      readLoop(connection);
    } catch (error) {
      appendLine(out, `[${describeError(error)}]`);
    }
  });
  $('tcp-send-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!connection) return;
    const line = $('tcp-line').value;
    $('tcp-line').value = '';
    try {
      await connection.send(`${line}\r\n`);
    } catch (error) {
      appendLine(out, `[${describeError(error)}]`);
    }
  });
  $('tcp-close-button').addEventListener('click', () => {
    if (connection) connection.close();
    appendLine(out, '[closing: sent end of stream]');
  });
}

export function setupTools(api) {
  setupTabs();
  setupPing(api);
  setupLookup(api);
  setupTcp(api);
}
