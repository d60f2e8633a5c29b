// Lesson 1 (the number line): four <ql-levels> on the same group of the default model, with the
// tensor and group kept in the URL (`?tensor=…&group=…`) so a teacher can link a class to one view.
import { defineElements, type QlLevels } from '../src/components/index';

// The repository's package.json marks only lib/components.js as having side effects, so the lab's
// build would drop a bare import of the source module.
defineElements();

/** The lab's default model, relative to this page (the PWA caches it under the same URL). */
const MODEL = '../models/SmolLM2-135M-Instruct.Q4_1.gguf';

const params = new URLSearchParams(location.search);
const tensor = document.getElementById('tensor') as HTMLSelectElement;
const group = document.getElementById('group') as HTMLInputElement;
const levels = [...document.querySelectorAll<QlLevels>('ql-levels')];

if (params.get('tensor')) {
  const name = params.get('tensor')!;
  // A tensor the list lacks (from a shared link) is offered too.
  if (![...tensor.options].some((o) => o.value === name)) tensor.append(new Option(name, name));
  tensor.value = name;
}
group.value = String(Math.max(0, Math.floor(Number(params.get('group'))) || 0));

function apply(): void {
  const url = new URL(location.href);
  url.searchParams.set('tensor', tensor.value);
  url.searchParams.set('group', group.value);
  history.replaceState(null, '', url);
  for (const l of levels) {
    l.src = MODEL;
    l.tensor = tensor.value;
    l.group = Math.max(0, Math.floor(Number(group.value)) || 0);
  }
}

tensor.addEventListener('change', apply);
group.addEventListener('change', apply);
apply();
