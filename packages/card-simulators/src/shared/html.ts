/** Tiny server-rendered HTML helpers for the hosted checkout pages (no scripts, no frameworks). */

export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;margin:0;padding:24px;color:#1f2933}
main{max-width:440px;margin:0 auto;background:#fff;border-radius:10px;padding:24px;box-shadow:0 2px 10px rgba(0,0,0,.08)}
h1{font-size:1.1rem;margin:0 0 4px}.sim{font-size:.75rem;color:#b42318;text-transform:uppercase;letter-spacing:.05em}
dl{display:grid;grid-template-columns:auto 1fr;gap:6px 12px;margin:16px 0}dt{color:#616e7c}dd{margin:0;font-weight:600}
.amount{font-size:1.6rem;font-weight:700;margin:12px 0}label{display:block;margin:12px 0 4px;color:#616e7c}
select{width:100%;padding:8px;font-size:1rem}.actions{display:grid;gap:8px;margin-top:16px}
button{padding:12px;font-size:1rem;border-radius:6px;border:1px solid #cbd2d9;background:#fff;cursor:pointer}
button.primary{background:#0b7a3e;color:#fff;border-color:#0b7a3e}button.danger{color:#b42318}
.notice{padding:12px;border-radius:6px;background:#fff4e5;margin:12px 0}.error{background:#fde8e8}`;

/** A full HTML document. `body` must already be escaped. */
export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

/** A `<dl>` of label/value pairs with stable ids (values escaped here). */
export function definitionList(rows: Array<[id: string, label: string, value: string]>): string {
  return `<dl>${rows.map(([id, label, value]) => `<dt>${escapeHtml(label)}</dt><dd id="${id}">${escapeHtml(value)}</dd>`).join('')}</dl>`;
}

/** A page that only states something (closed, paid, not found…). */
export function messagePage(title: string, id: string, message: string, status: string): string {
  return htmlPage(
    title,
    `<main id="checkout" data-state="${escapeHtml(status)}"><p class="sim">Simulator</p><h1>${escapeHtml(title)}</h1><p id="${id}" class="notice">${escapeHtml(message)}</p></main>`,
  );
}
