// The TLS module (tls/, a wasm of its own) is fetched the first time an https:// home app is
// opened; the page's first load does not carry it. A failed load is tried again next time.
let loading = null;

export function tlsClient(ip) {
  if (!loading) {
    loading = import(new URL('/tls/hometun_tls.js', location.origin).href).then(async (m) => {
      await m.default();
      return m;
    });
    loading.catch(() => { loading = null; });
  }
  return loading.then((m) => new m.TlsClient(ip));
}
