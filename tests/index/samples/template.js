// SPDX-License-Identifier: MIT
'use strict';

/**
 * Render a list of users as an HTML table.
 * @param {Array<{name: string, age: number}>} users - rows; it's fine if empty
 * @returns {string}
 */
export function renderUsers(users) {
  const rows = users.map((u) => `
    <tr class="${u.age > 40 ? 'old' : "young"}">
      <td>${u.name}</td> <!-- don't escape here -->
      <td>${u.age}</td>
    </tr>`).join('');
  /* a comment that ends on the next line
     and has a 'quote */
  const pattern = /\/\*[^]*?\*\//g; // a regex literal with comment markers
  return `<table>${rows}</table>`.replace(pattern, '');
}

class Cache {
  #entries = new Map();
  get(key) { return this.#entries.get(key) ?? null; }
  set(key, value) { this.#entries.set(key, value); return this; }
}
