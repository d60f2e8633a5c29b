// The app frame: the shared tensor/format bar stays at the top and the section list beside the
// panels (a sidebar on wide screens, a "Sections" menu on phones), so any panel is one click
// away from any other. The bar's height is published as --bar-h so the sidebar and the
// sections' scroll-margin sit just under it whatever it wraps to.
import { $ } from './dom';

/** Below this width the sidebar folds into the menu (kept equal to the CSS media query). */
const NARROW = '(max-width: 900px)';

export function initNav(): void {
  const bar = $('#toolbar');
  const nav = $('#section-nav');
  const toggle = $('#nav-toggle') as HTMLButtonElement;
  const links = [...nav.querySelectorAll<HTMLAnchorElement>('a[data-panel]')];
  const sectionOf = (a: HTMLAnchorElement) => document.querySelector<HTMLElement>(a.hash);

  new ResizeObserver(() => document.documentElement.style.setProperty('--bar-h', `${bar.offsetHeight}px`)).observe(bar);

  const setOpen = (open: boolean) => {
    nav.classList.toggle('open', open);
    toggle.setAttribute('aria-expanded', String(open));
  };
  toggle.addEventListener('click', () => setOpen(!nav.classList.contains('open')));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && nav.classList.contains('open')) {
      setOpen(false);
      toggle.focus();
    }
  });
  for (const a of links) {
    a.addEventListener('click', (e) => {
      const section = sectionOf(a);
      // A panel that has nothing to show yet (no model, no tensor) stays where it is.
      if (!section || section.hidden) {
        e.preventDefault();
        return;
      }
      if (matchMedia(NARROW).matches) setOpen(false);
    });
  }

  // Links to panels that are still hidden are shown as unavailable, not removed: the list
  // says what the lab has even before a model is open.
  const markAvailable = () => {
    for (const a of links) {
      const hidden = sectionOf(a)?.hidden ?? true;
      a.classList.toggle('unavailable', hidden);
      if (hidden) a.setAttribute('aria-disabled', 'true');
      else a.removeAttribute('aria-disabled');
    }
  };
  const sections = links.map(sectionOf).filter((s): s is HTMLElement => s !== null);
  const watcher = new MutationObserver(markAvailable);
  for (const s of sections) watcher.observe(s, { attributes: true, attributeFilter: ['hidden'] });
  markAvailable();

  // The current section: the last one whose top has passed a line a third of the way down the
  // view, or the last one on screen once the page is scrolled to its end.
  let frame = 0;
  const markCurrent = () => {
    frame = 0;
    const line = bar.offsetHeight + window.innerHeight / 3;
    const shown = sections.filter((s) => !s.hidden);
    const atEnd = window.scrollY + window.innerHeight >= document.documentElement.scrollHeight - 2;
    const onScreen = shown.filter((s) => s.getBoundingClientRect().top < window.innerHeight);
    const current = atEnd ? onScreen[onScreen.length - 1] : [...shown].reverse().find((s) => s.getBoundingClientRect().top <= line) ?? shown[0];
    for (const a of links) {
      if (current && sectionOf(a) === current) a.setAttribute('aria-current', 'true');
      else a.removeAttribute('aria-current');
    }
  };
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(markCurrent);
  };
  window.addEventListener('scroll', schedule, { passive: true });
  window.addEventListener('resize', schedule);
  new MutationObserver(schedule).observe(document.querySelector('main')!, { attributes: true, subtree: true, attributeFilter: ['hidden'] });
  schedule();
}
