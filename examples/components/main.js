// The page's own wiring (a file, not an inline script: a strict Content-Security-Policy allows it).
// Attributes and properties are the elements' API: changing one re-renders the element.
const histogram = document.getElementById('histogram');
document.getElementById('format').addEventListener('change', (e) => (histogram.format = e.target.value || null));
document.getElementById('measure').addEventListener('click', () => document.getElementById('tradeoff').setAttribute('formats', 'q8_0 q4_0 nf4'));
