// Safe HTML for the views: a tagged template that escapes every interpolated value unless it is already Html,
// and the small building blocks of a page.

/** A fragment of HTML that is safe to insert as it is (built only by the `html` tag below). */
export class Html {
  constructor(readonly value: string) {}
}

export type Part = Html | string | number | undefined | readonly Part[];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]);
}

function partToHtml(part: Part): string {
  if (part instanceof Html) return part.value;
  if (Array.isArray(part)) return part.map(partToHtml).join('');
  if (part === undefined) return '';
  return escapeHtml(String(part));
}

export function html(strings: TemplateStringsArray, ...parts: Part[]): Html {
  let out = strings[0];
  parts.forEach((part, index) => {
    out += partToHtml(part) + strings[index + 1];
  });
  return new Html(out);
}

/** Long text as paragraphs: blank lines separate paragraphs, single line breaks are kept. */
export function paragraphs(text: string, className?: string): Html {
  const blocks = text
    .split(/\r?\n\s*\r?\n/)
    .map((block) => block.trim())
    .filter((block) => block !== '');
  return html`${blocks.map(
    (block) =>
      html`<p${className ? html` class="${className}"` : ''}>${block
        .split(/\r?\n/)
        .map((line, index) => (index === 0 ? html`${line}` : html`<br>${line}`))}</p>`,
  )}`;
}

export function facts(rows: [string, Part | undefined][]): Html {
  const shown = rows.filter(([, value]) => value !== undefined && value !== '');
  if (shown.length === 0) return html``;
  return html`<dl class="facts">${shown.map(([term, value]) => html`<dt>${term}</dt><dd>${value}</dd>`)}</dl>`;
}

export function bulletList(items: readonly Part[], className = 'bullets'): Html {
  return html`<ul class="${className}">${items.map((item) => html`<li>${item}</li>`)}</ul>`;
}

export function badge(text: string | undefined, tone: 'plain' | 'good' | 'warn' = 'plain'): Html {
  return text ? html`<span class="badge ${tone}">${text}</span>` : html``;
}

export function empty(text: string): Html {
  return html`<p class="empty">${text}</p>`;
}

export function section(id: string, title: string, body: Html): Html {
  return html`<section aria-labelledby="${id}"><h2 id="${id}">${title}</h2>${body}</section>`;
}
