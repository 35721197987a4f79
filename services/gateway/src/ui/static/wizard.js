/*
 * The wizard without page reloads: every step is also a plain GET form and works without this script. Here steps
 * are swapped in place through POST /ui/wizard (the answer's Hx-Push-Url becomes the address), extension search and
 * version notes are fetched as fragments, copy buttons write to the clipboard, and "Prepare" starts a build through
 * POST /builds and follows its progress (GET /builds/<id>/events) when the factory has those routes.
 */
(function () {
  'use strict';
  var doc = document;
  doc.documentElement.classList.add('js');
  var FORM_TYPE = 'application/x-www-form-urlencoded';

  function form() { return doc.getElementById('wizard-form'); }
  function msg(name) { var m = doc.getElementById('wizard'); return (m && m.getAttribute('data-msg-' + name)) || ''; }

  function encode(fd) {
    var p = new URLSearchParams();
    fd.forEach(function (v, k) { if (typeof v === 'string') p.append(k, v); });
    return p.toString();
  }

  function swap(body, push) {
    var f = form();
    if (!f) return Promise.resolve();
    f.setAttribute('aria-busy', 'true');
    return fetch('/ui/wizard', { method: 'POST', headers: { 'Content-Type': FORM_TYPE, 'HX-Request': 'true' }, body: body, credentials: 'same-origin' })
      .then(function (r) {
        return r.text().then(function (text) {
          f.innerHTML = text;
          f.removeAttribute('aria-busy');
          var url = r.headers.get('Hx-Push-Url');
          var title = r.headers.get('X-Wizard-Title');
          if (title) doc.title = decodeURIComponent(title);
          if (url && push) history.pushState({ wizard: url }, '', url);
          if (url) relinkLanguages(url);
          var heading = f.querySelector('.step-title, h2');
          if (heading) { heading.setAttribute('tabindex', '-1'); heading.focus({ preventScroll: true }); }
          window.scrollTo(0, 0);
        });
      })
      .catch(function () { f.removeAttribute('aria-busy'); location.reload(); });
  }

  // The language links sit outside the swapped form: they follow the step's address so a switch keeps the choices.
  function relinkLanguages(url) {
    var q = url.indexOf('?') >= 0 ? url.slice(url.indexOf('?') + 1) : '';
    doc.querySelectorAll('a[hreflang]').forEach(function (a) {
      var p = new URLSearchParams(q);
      p.set('lang', a.getAttribute('hreflang') || '');
      a.setAttribute('href', '/?' + p.toString());
    });
  }

  doc.addEventListener('submit', function (e) {
    var f = e.target;
    if (!f || f.id !== 'wizard-form' || !window.fetch || !window.URLSearchParams) return;
    e.preventDefault();
    var fd = new FormData(f);
    var s = e.submitter;
    if (s && s.name) fd.append(s.name, s.value || '');
    swap(encode(fd), true);
  });

  doc.addEventListener('click', function (e) {
    var t = e.target;
    if (!(t instanceof Element)) return;
    var back = t.closest('a.back');
    if (back && !e.ctrlKey && !e.metaKey && !e.shiftKey && e.button === 0) {
      e.preventDefault();
      swap(new URL(back.href).search.slice(1), true);
      return;
    }
    var copy = t.closest('button.copy');
    if (copy) { copyText(copy.getAttribute('data-copy') || ''); return; }
    var prep = t.closest('button.prepare');
    if (prep) prepare(prep);
  });

  window.addEventListener('popstate', function () {
    if (location.pathname === '/') swap(location.search.slice(1), false);
  });

  function copyText(text) {
    var live = doc.getElementById('copy-status');
    var done = function () { if (live) live.textContent = msg('copied'); };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, function () {});
  }

  doc.addEventListener('change', function (e) {
    var t = e.target;
    if (t && t.id === 'version') {
      fetch('/ui/version-doc?version=' + encodeURIComponent(t.value), { headers: { 'HX-Request': 'true' } })
        .then(function (r) { return r.text(); })
        .then(function (text) { var d = doc.getElementById('version-doc'); if (d) d.outerHTML = text; });
    }
  });

  var searchTimer;
  doc.addEventListener('input', function (e) {
    var t = e.target;
    if (!t || t.id !== 'extensions-search') return;
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      var f = form();
      var p = new URLSearchParams();
      p.append('version', (f.querySelector('input[name="version"]') || {}).value || '');
      p.append('search', t.value);
      f.querySelectorAll('input[name="extensions"]:checked').forEach(function (c) { p.append('extensions', c.value); });
      fetch('/ui/extensions-list', { method: 'POST', headers: { 'Content-Type': FORM_TYPE, 'HX-Request': 'true' }, body: p.toString() })
        .then(function (r) { return r.text(); })
        .then(function (text) { var l = doc.getElementById('extensions-list'); if (l) l.outerHTML = text; });
    }, 250);
  });
  doc.addEventListener('keydown', function (e) {
    // Enter in the search box searches in place instead of submitting the step
    if (e.key === 'Enter' && e.target && e.target.id === 'extensions-search') e.preventDefault();
  });

  function formatSize(n) {
    var u = ['B', 'KiB', 'MiB', 'GiB'], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }

  function showBuild(item, b) {
    var status = item.querySelector('.status');
    var bar = item.querySelector('progress');
    var stage = item.querySelector('.stage');
    var wrap = item.querySelector('.build-progress');
    if (wrap) wrap.hidden = b.state === 'done';
    if (bar && typeof b.percent === 'number') bar.value = b.percent;
    if (stage) stage.textContent = b.state === 'queued' ? msg('queued') : b.state === 'failed' ? msg('failed') + (b.error ? ': ' + b.error.message : '') : b.stage || '';
    if (status && b.state === 'done') {
      status.className = 'status built';
      status.setAttribute('data-state', 'done');
      status.textContent = msg('built').replace('{size}', formatSize(b.size || 0));
    }
  }

  function prepare(btn) {
    var section = btn.closest('.final');
    var item = btn.closest('.asset');
    if (!section || !item || !window.EventSource) return;
    btn.disabled = true;
    var body = JSON.stringify({ schematic: section.getAttribute('data-schematic'), version: section.getAttribute('data-version'), assets: [btn.getAttribute('data-asset')] });
    fetch('/builds', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: body })
      .then(function (r) {
        if (r.status === 404 || r.status === 405) {
          // this factory has no build API: the link builds on request
          doc.querySelectorAll('button.prepare').forEach(function (b) { b.hidden = true; });
          return null;
        }
        if (!r.ok) return r.text().then(function (t) { showBuild(item, { state: 'failed', error: { message: t.trim() } }); btn.disabled = false; return null; });
        return r.json();
      })
      .then(function (res) {
        if (!res || !res.builds || !res.builds[0]) return;
        var b = res.builds[0];
        btn.hidden = true;
        showBuild(item, b);
        if (b.state === 'done' || b.state === 'failed') return;
        var es = new EventSource('/builds/' + encodeURIComponent(b.id) + '/events');
        es.addEventListener('build', function (ev) {
          var cur = JSON.parse(ev.data);
          showBuild(item, cur);
          if (cur.state === 'done' || cur.state === 'failed') es.close();
        });
        es.onerror = function () { es.close(); };
      })
      .catch(function () { btn.disabled = false; });
  }

  // `?lang=` has set the cookie: the address goes back to the step's own URL
  if (location.search.indexOf('lang=') >= 0) {
    var p = new URLSearchParams(location.search);
    p.delete('lang');
    var q = p.toString();
    history.replaceState(null, '', q ? '/?' + q : '/');
  }
})();
