// The DOM builder the dashboard and the portal page share: elements from tag, attributes and children,
// every string set as text (textContent, or a text node), never parsed as HTML. Loaded before each
// page's own script, as a plain file (the pages' CSP allows scripts from their own origin only).
// Also the transformation template picker both pages' endpoint forms use, and an event type's example.
'use strict';

(() => {
  /** h('tr', {class:'x'}, 'text', child): attributes by setAttribute, children as text nodes. */
  function h(tag, props, ...children) {
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
  }

  /**
   * The template picker of an endpoint form: `select` lists `templates` (as GET …/transformation-templates
   * answers); choosing one puts its code in `code`, an editable textarea, and says in `hint` what it
   * sends and what it needs. Choosing None empties the code only if it is still the template's, as put.
   *   set(template, transformation)  shows an endpoint's own (or nothing, for a new one)
   *   value()                        {transformation, template}: the code (null when empty), and the
   *                                  template chosen as its label (null without code or template)
   */
  function templatePicker({ select, code, hint }, templates) {
    const byName = new Map(templates.map((t) => [t.name, t]));
    select.replaceChildren(h('option', { value: '' }, 'None'), ...templates.map((t) => h('option', { value: t.name }, t.title)));
    let filled = null;
    const describe = (t) => {
      hint.hidden = !t;
      if (!t) return void (hint.textContent = '');
      const options = t.options.map((o) => `Fill in ${o.name} in the code${o.required ? ' (required)' : ''}: ${o.description}`);
      hint.textContent = [t.description, `Endpoint URL: ${t.url_hint}.`, ...options].join(' ');
    };
    select.addEventListener('change', () => {
      const t = byName.get(select.value);
      if (t) {
        code.value = t.source;
        filled = t.source;
      } else if (filled !== null && code.value === filled) {
        code.value = '';
        filled = null;
      }
      describe(t);
    });
    return {
      set(template, transformation) {
        const t = template ? byName.get(template) : undefined;
        select.value = t ? t.name : '';
        code.value = transformation || '';
        // The template's code as it came: None may take it away, as for one just picked.
        filled = t && transformation === t.source ? transformation : null;
        describe(byName.get(select.value));
      },
      value() {
        const transformation = code.value.trim() ? code.value : null;
        return { transformation, template: transformation && select.value ? select.value : null };
      },
    };
  }

  /** An example of an event type's data: the schema's own `examples`, else a sketch of its fields. */
  function exampleOf(schema) {
    if (!schema || typeof schema !== 'object') return null;
    if (Array.isArray(schema.examples) && schema.examples.length > 0) return { label: 'Example data', value: schema.examples[0] };
    if (!schema.properties || typeof schema.properties !== 'object') return null;
    const sketch = {};
    for (const [name, value] of Object.entries(schema.properties)) {
      const prop = value && typeof value === 'object' ? value : {};
      const type = Array.isArray(prop.type) ? prop.type[0] : prop.type;
      sketch[name] = Array.isArray(prop.examples) && prop.examples.length > 0 ? prop.examples[0]
        : type === 'string' ? 'string' : type === 'number' || type === 'integer' ? 0 : type === 'boolean' ? false : type === 'array' ? [] : type === 'object' ? {} : null;
    }
    return { label: 'Data fields', value: sketch };
  }

  window.carteiroDom = Object.freeze({ h, templatePicker, exampleOf });
})();
