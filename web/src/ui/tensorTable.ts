// The tensor table: one row per tensor, selectable by click or keyboard (Enter/Space, arrows).
import { formatBpw, formatBytes, formatShape } from '../format';
import type { TensorRow } from '../messages';
import { el } from './dom';

export function renderTensorTable(tbody: HTMLElement, tensors: TensorRow[], onSelect: (name: string) => void): void {
  tbody.replaceChildren();
  for (const t of tensors) {
    const tr = el('tr', undefined, { tabindex: '0', 'data-tensor': t.name, 'aria-selected': 'false' });
    tr.append(
      el('td', t.name),
      el('td', formatShape(t.dims)),
      el('td', t.type),
      el('td', formatBytes(t.nBytes), { 'data-bytes': String(t.nBytes) }),
      el('td', formatBpw(t.bitsPerWeight)),
    );
    tr.addEventListener('click', () => onSelect(t.name));
    tr.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        onSelect(t.name);
      } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        event.preventDefault();
        const next = (event.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling) as HTMLElement | null;
        next?.focus();
      }
    });
    tbody.append(tr);
  }
}

export function markSelected(tbody: HTMLElement, name: string): void {
  for (const tr of tbody.querySelectorAll<HTMLElement>('tr')) {
    const selected = tr.dataset.tensor === name;
    tr.setAttribute('aria-selected', String(selected));
    if (selected) tr.scrollIntoView({ block: 'nearest' });
  }
}
