// The small DOM builders every view shares.

// Props set as attributes (beside `data-*` and `aria-*`); any other prop is set as a property
// (`onclick`, `checked`, `hidden`...).
const ATTRIBUTES = new Set([
  'role', 'href', 'title', 'alt', 'loading', 'src', 'type', 'datetime', 'colspan', 'width', 'height',
]);

/**
 * An element with `props` (`class`, `text`, attributes, properties) and `children` (nodes or
 * strings). Props and children that are null, undefined or false are left out.
 */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (ATTRIBUTES.has(k) || k.startsWith('data-') || k.startsWith('aria-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return e;
}

/** The sprite's icon `name` (an `<svg><use href="#name">`), hidden from assistive technology. */
export function icon(name, cls = 'icon') {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', cls);
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS('http://www.w3.org/2000/svg', 'use');
  use.setAttribute('href', `#${name}`);
  svg.append(use);
  return svg;
}

/** A small icon-only button for `action`, named `label` for screen readers and as its tooltip. */
export function iconButton(action, label, iconName, extra = {}) {
  return el(
    'button',
    { type: 'button', class: 'btn btn-icon btn-ghost btn-small', 'data-action': action, 'aria-label': label, title: label, ...extra },
    icon(iconName),
  );
}
