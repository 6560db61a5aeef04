// For unit tests: what a mocked `fetch` answers (a Response-like object with the status, body and headers given).

export const reply = (status: number, body?: unknown, headers: Record<string, string> = {}) => ({
  ok: status < 300,
  status,
  statusText: '',
  headers: new Headers(headers),
  json: async () => body,
  text: async () => (body === undefined ? '' : JSON.stringify(body)),
});
