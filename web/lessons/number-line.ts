// Lesson 1 (the number line): four <ql-levels> on the same group of the default model, with the
// tensor and group kept in the URL (`?tensor=…&group=…`) so a teacher can link a class to one view.
import { defineElements, type QlLevels } from '../src/components/index';
import { MODEL, keepInUrl, pickOption } from './state';

// The repository's package.json marks only lib/components.js as having side effects, so the lab's
// build would drop a bare import of the source module.
defineElements();

const params = new URLSearchParams(location.search);
const tensor = document.getElementById('tensor') as HTMLSelectElement;
const group = document.getElementById('group') as HTMLInputElement;
const levels = [...document.querySelectorAll<QlLevels>('ql-levels')];

pickOption(tensor, params.get('tensor'));
group.value = String(Math.max(0, Math.floor(Number(params.get('group'))) || 0));

function apply(): void {
  keepInUrl({ tensor: tensor.value, group: group.value });
  for (const l of levels) {
    l.src = MODEL;
    l.tensor = tensor.value;
    l.group = Math.max(0, Math.floor(Number(group.value)) || 0);
  }
}

tensor.addEventListener('change', apply);
group.addEventListener('change', apply);
apply();
