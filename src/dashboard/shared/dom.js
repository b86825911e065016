// The DOM builder the dashboard and the portal page share: elements from tag, attributes and children,
// every string set as text (textContent, or a text node), never parsed as HTML. Loaded before each
// page's own script, as a plain file (the pages' CSP allows scripts from their own origin only).
'use strict';

/** h('tr', {class:'x'}, 'text', child): attributes by setAttribute, children as text nodes. */
window.carteiroDom = Object.freeze({
  h(tag, props, ...children) {
    const el = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = String(v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  },
});
