// pymager's console: upload, browse, inspect and delete originals through the HTTP API.
//
// Everything it shows that came from outside (ids, file names, the server's problem details) is set
// with textContent or as an attribute, never parsed as HTML: the page's Content-Security-Policy
// requires Trusted Types, so an innerHTML assignment would throw rather than inject.
'use strict';

const KEY_STORAGE = 'pymager-api-key'; // sessionStorage: the key lives as long as this tab
const PAGE_SIZE = 48;
const MAX_ID = 128;
const OUTSIDE_ID = /[^A-Za-z0-9_-]/gu; // per code point, as the CLI's Python regex counts them
const MAX_MESSAGES = 50;

const $ = (id) => document.getElementById(id);

class Problem extends Error {
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

// --- the API key -----------------------------------------------------------------------------

function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

function showKeyState() {
  const key = storedKey();
  $('key-state').textContent = key ? 'API key set for this tab' : 'no API key in this tab';
  $('key-forget').hidden = !key;
}

let pendingKey = null; // the resolve of the key dialog that is open

// Ask for a key in the key dialog; resolves with it, or null when the user cancels.
function askKey(reason) {
  $('key-reason').textContent = reason;
  $('key-input').value = '';
  const dialog = $('key-dialog');
  if (!dialog.open) dialog.showModal();
  $('key-input').focus();
  return new Promise((resolve) => {
    pendingKey = resolve;
  });
}

function settleKey(key) {
  const resolve = pendingKey;
  pendingKey = null;
  if ($('key-dialog').open) $('key-dialog').close();
  if (resolve) resolve(key);
}

// --- HTTP ------------------------------------------------------------------------------------

// fetch with the tab's key as Bearer; on a 401 ask for a key (the server's detail says why) and try
// again, until it is accepted or the user cancels (then the 401 is the answer).
async function api(method, path, body, reason) {
  for (;;) {
    const headers = {};
    const key = storedKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    // 'omit': the 401 carries a Basic challenge too, which would make the browser ask for a user and
    // password in a dialog of its own (and wait for it forever, headless); the key goes as Bearer.
    const response = await fetch(path, { method, headers, body, credentials: 'omit' });
    if (response.status !== 401) return response;
    const problem = await problemOf(response);
    const given = await askKey(key ? problem.message : reason);
    if (given === null) throw problem;
    sessionStorage.setItem(KEY_STORAGE, given);
    showKeyState();
  }
}

async function problemOf(response) {
  let title = response.statusText || `HTTP ${response.status}`;
  let detail = '';
  const type = response.headers.get('Content-Type') || '';
  if (type.startsWith('application/problem+json')) {
    try {
      const body = await response.json();
      title = String(body.title ?? title);
      detail = String(body.detail ?? '');
    } catch {
      // not the problem it announced: the status line says enough
    }
  }
  return new Problem(response.status, title, detail);
}

async function jsonOf(response) {
  if (!response.ok) throw await problemOf(response);
  return response.json();
}

function describe(error) {
  if (error instanceof Problem) return error.message;
  if (error instanceof TypeError) return `the request failed (${error.message})`;
  return String(error);
}

// --- messages --------------------------------------------------------------------------------

function say(text, kind = 'info') {
  const item = document.createElement('li');
  item.className = kind;
  item.textContent = text;
  const list = $('messages');
  list.prepend(item);
  while (list.children.length > MAX_MESSAGES) list.lastElementChild.remove();
  return item;
}

function update(item, text, kind) {
  item.className = kind;
  item.textContent = text;
}

// --- ids -------------------------------------------------------------------------------------

// The id of a file, as `pymager import` makes it: the name without its extension, every character
// outside [A-Za-z0-9_-] as `_`.
function idFor(name) {
  const dot = name.lastIndexOf('.');
  const stem = dot > 0 && dot < name.length - 1 ? name.slice(0, dot) : name;
  const id = stem.replace(OUTSIDE_ID, '_');
  if (id.length > MAX_ID) throw new Error(`its id would be ${id.length} characters, over ${MAX_ID}`);
  return id;
}

function derivedUrl(id, side) {
  return `/derived/${encodeURIComponent(id)}-${side}x${side}-fit.auto`;
}

// --- the grid --------------------------------------------------------------------------------

let nextCursor = null;

function tile(item) {
  const entry = document.createElement('li');
  entry.className = 'tile';
  entry.dataset.id = item.id;
  const open = document.createElement('button');
  open.type = 'button';
  open.className = 'tile-open';
  open.title = `Details of ${item.id}`;
  const picture = document.createElement('img');
  picture.loading = 'lazy'; // before src: the browser must not start loading it at once
  picture.decoding = 'async';
  picture.alt = item.id;
  picture.width = 200;
  picture.height = 200;
  picture.sizes = '200px';
  picture.srcset = `${derivedUrl(item.id, 200)} 200w, ${derivedUrl(item.id, 400)} 400w`;
  picture.src = derivedUrl(item.id, 200);
  const name = document.createElement('span');
  name.className = 'tile-id';
  name.textContent = item.id;
  const facts = document.createElement('span');
  facts.className = 'tile-facts';
  facts.textContent = `${item.format} ${item.width}×${item.height}`;
  open.append(picture, name, facts);
  open.addEventListener('click', () => openDetail(item.id).catch((error) => say(describe(error), 'error')));
  entry.append(open);
  return entry;
}

function tileOf(id) {
  return [...$('grid').children].find((entry) => entry.dataset.id === id) ?? null;
}

function showEmpty() {
  $('empty').hidden = $('grid').children.length > 0;
}

const LISTING_REASON = 'This server lists its originals only to holders of an API key.';
const WRITE_REASON = 'This server takes uploads and deletes only with an API key.';

async function loadPage(after) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (after) query.set('after', after);
  const page = await jsonOf(await api('GET', `/original?${query}`, undefined, LISTING_REASON));
  const grid = $('grid');
  for (const item of page.items) {
    if (!tileOf(item.id)) grid.append(tile(item));
  }
  nextCursor = page.next;
  $('more').hidden = nextCursor === null;
  showEmpty();
}

function reload() {
  $('grid').replaceChildren();
  $('more').hidden = true;
  nextCursor = null;
  loadPage(null).catch((error) => say(`listing: ${describe(error)}`, 'error'));
}

// --- uploads ---------------------------------------------------------------------------------

async function uploadOne(file) {
  const line = say(`${file.name}: uploading…`);
  let id;
  try {
    id = idFor(file.name);
  } catch (error) {
    update(line, `${file.name}: not uploaded: ${error.message}`, 'error');
    return;
  }
  const form = new FormData();
  form.append('file', file, file.name);
  try {
    const stored = await jsonOf(await api('POST', `/original/${id}`, form, WRITE_REASON));
    update(line, `${file.name}: stored as ${stored.id} (${stored.format} ${stored.width}×${stored.height})`, 'ok');
    if (!tileOf(stored.id)) $('grid').prepend(tile(stored));
    showEmpty();
  } catch (error) {
    update(line, `${file.name}: not stored: ${describe(error)}`, 'error');
  }
}

// One at a time, in order: a key asked for by the first 401 serves the rest.
async function uploadAll(files) {
  for (const file of [...files]) await uploadOne(file);
}

// --- details and delete ----------------------------------------------------------------------

let shownId = null;

function fact(list, term, value) {
  const name = document.createElement('dt');
  name.textContent = term;
  const description = document.createElement('dd');
  if (value instanceof Node) description.append(value);
  else description.textContent = value === null || value === undefined ? '—' : String(value);
  list.append(name, description);
}

function colourSwatch(colour) {
  const swatch = document.createElement('span');
  const sample = document.createElement('span');
  sample.className = 'swatch';
  sample.style.backgroundColor = colour; // CSSOM, which style-src allows (a style attribute it would not)
  swatch.append(sample, document.createTextNode(` ${colour}`));
  return swatch;
}

function derivedRow(derived) {
  const row = document.createElement('tr');
  const link = document.createElement('a');
  link.textContent = derived.url;
  if (typeof derived.url === 'string' && derived.url.startsWith('/derived/')) link.href = derived.url;
  const size = derived.width === null ? '—' : `${derived.width}×${derived.height}`;
  const cells = [link, derived.format, derived.mode, size, derived.bytes, derived.created ?? '—'];
  for (const value of cells) {
    const cell = document.createElement('td');
    if (value instanceof Node) cell.append(value);
    else cell.textContent = String(value);
    row.append(cell);
  }
  return row;
}

async function openDetail(id) {
  const info = await jsonOf(await api('GET', `/original/${encodeURIComponent(id)}/info`));
  shownId = info.id;
  $('detail-title').textContent = info.id;
  const preview = $('detail-preview');
  preview.alt = info.id;
  preview.sizes = '400px';
  preview.srcset = `${derivedUrl(info.id, 400)} 400w, ${derivedUrl(info.id, 800)} 800w`;
  preview.src = derivedUrl(info.id, 400);
  const facts = $('detail-facts');
  facts.replaceChildren();
  fact(facts, 'id', info.id);
  fact(facts, 'format', info.format);
  fact(facts, 'size', `${info.width}×${info.height}`);
  fact(facts, 'bytes', info.bytes);
  fact(facts, 'sha256', info.sha256);
  fact(facts, 'created', info.created);
  fact(facts, 'focus', Array.isArray(info.focus) ? info.focus.join(', ') : null);
  fact(facts, 'animated', info.animated);
  fact(facts, 'alpha', info.alpha);
  fact(facts, 'thumbhash', info.thumbhash);
  fact(facts, 'colour', typeof info.colour === 'string' ? colourSwatch(info.colour) : null);
  const rows = $('detail-derived').tBodies[0];
  rows.replaceChildren(...info.derived.map(derivedRow));
  $('detail-no-derived').hidden = info.derived.length > 0;
  $('detail-derived').hidden = info.derived.length === 0;
  if (!$('detail-dialog').open) $('detail-dialog').showModal();
}

function askDelete() {
  $('confirm-text').textContent = `Delete ${shownId} and every derived image of it? This cannot be undone.`;
  $('confirm-dialog').showModal();
}

async function deleteShown() {
  const id = shownId;
  $('confirm-dialog').close();
  try {
    const response = await api('DELETE', `/original/${encodeURIComponent(id)}`, undefined, WRITE_REASON);
    if (!response.ok && response.status !== 404) throw await problemOf(response);
    tileOf(id)?.remove();
    showEmpty();
    $('detail-dialog').close();
    say(response.ok ? `deleted ${id}` : `${id} was already gone`, 'ok');
  } catch (error) {
    say(`delete ${id}: ${describe(error)}`, 'error');
  }
}

// --- wiring ----------------------------------------------------------------------------------

function wire() {
  const zone = $('drop-zone');
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    uploadAll(event.dataTransfer.files);
  });
  // A file dropped beside the zone must not make the browser navigate away to it.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());

  const input = $('file-input');
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    uploadAll(files);
  });

  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault(); // never a form submission (form-action 'none')
    settleKey($('key-input').value.trim() || null);
  });
  $('key-cancel').addEventListener('click', () => settleKey(null));
  // Escape closes it too; a close queued before the dialog was opened again for a retry is ignored.
  $('key-dialog').addEventListener('close', () => {
    if (!$('key-dialog').open) settleKey(null);
  });
  $('key-enter').addEventListener('click', async () => {
    const key = await askKey('The key is kept in this tab only.');
    if (key === null) return;
    sessionStorage.setItem(KEY_STORAGE, key);
    showKeyState();
    reload();
  });
  $('key-forget').addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORAGE);
    showKeyState();
    say('API key forgotten');
  });

  $('more').addEventListener('click', () =>
    loadPage(nextCursor).catch((error) => say(`listing: ${describe(error)}`, 'error')),
  );
  $('detail-close').addEventListener('click', () => $('detail-dialog').close());
  $('detail-delete').addEventListener('click', askDelete);
  $('confirm-cancel').addEventListener('click', () => $('confirm-dialog').close());
  $('confirm-delete').addEventListener('click', deleteShown);
}

wire();
showKeyState();
reload();
