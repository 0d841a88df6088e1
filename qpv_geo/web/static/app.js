/* qpv-geo — enhancements of the instructors' page (the page works without them):
 * address suggestions while typing (debounced, keyboard-navigable ARIA combobox),
 * the map of the point and nearby perimeters, "copy as text" and "print".
 * User data is only ever inserted with textContent (never innerHTML). */
(function () {
  "use strict";

  // ------------------------------------------------------------------ suggestions
  function setupSuggestions() {
    var input = document.getElementById("adresse");
    var list = document.getElementById("suggestions");
    var status = document.getElementById("suggestions-etat");
    if (!input || !list) { return; }
    var timer = null;
    var controller = null;
    var items = [];
    var active = -1;

    function close() {
      list.hidden = true;
      list.replaceChildren();
      items = [];
      active = -1;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      var options = list.children;
      for (var i = 0; i < options.length; i++) {
        options[i].setAttribute("aria-selected", i === index ? "true" : "false");
      }
      active = index;
      if (index >= 0 && options[index]) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function choose(index) {
      if (index < 0 || index >= items.length) { return; }
      clearTimeout(timer);  // an answer still on its way must not reopen the list
      if (controller) { controller.abort(); }
      input.value = items[index].label;
      close();
      input.focus();
    }

    function show(suggestions) {
      list.replaceChildren();
      items = suggestions;
      active = -1;
      if (!suggestions.length) {
        close();
        status.textContent = "Aucune adresse proposée.";
        return;
      }
      suggestions.forEach(function (s, i) {
        var li = document.createElement("li");
        li.id = "suggestion-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.textContent = s.label;
        li.addEventListener("mousedown", function (event) {
          event.preventDefault();  // keep the focus in the field
          choose(i);
        });
        list.appendChild(li);
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
      status.textContent = suggestions.length === 1 ? "1 adresse proposée."
        : suggestions.length + " adresses proposées.";
    }

    function fetchSuggestions() {
      var q = input.value.trim();
      if (q.length < 3) { close(); return; }
      if (controller) { controller.abort(); }
      controller = new AbortController();
      fetch("/api/v1/suggestions?limite=8&q=" + encodeURIComponent(q),
            { signal: controller.signal, headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { suggestions: [] }; })
        .then(function (data) {
          // only the answer to what the field holds now (not to a shorter, older text)
          if (document.activeElement === input && input.value.trim() === q) {
            show(data.suggestions || []);
          }
        })
        .catch(function (err) {
          if (err && err.name === "AbortError") { return; }
          close();
        });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(fetchSuggestions, 200);
    });
    input.addEventListener("keydown", function (event) {
      var open = !list.hidden && items.length > 0;
      if (event.key === "ArrowDown") {
        if (!open) { fetchSuggestions(); return; }
        event.preventDefault();
        highlight(active + 1 >= items.length ? 0 : active + 1);
      } else if (event.key === "ArrowUp" && open) {
        event.preventDefault();
        highlight(active <= 0 ? items.length - 1 : active - 1);
      } else if (event.key === "Enter" && open && active >= 0) {
        event.preventDefault();  // pick the suggestion; a second Enter submits
        choose(active);
      } else if (event.key === "Escape" && open) {
        event.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 150); });
  }

  // ------------------------------------------------------------------ map
  var STYLES = {
    qpv: { color: "#0f6b2f", weight: 2, fillColor: "#8fd19e", fillOpacity: 0.45 },
    qva: { color: "#a4161a", weight: 2, fillColor: "#f4b6b6", fillOpacity: 0.35, dashArray: "4 3" },
    qpv_hors_sem: { color: "#a4161a", weight: 2, fillColor: "#f4b6b6", fillOpacity: 0.35 },
    commune: { color: "#6b7280", weight: 1, fill: false }
  };
  var KIND_LABELS = { qpv: "QPV de SEM", qva: "QVA", qpv_hors_sem: "QPV hors SEM", commune: "Commune" };

  function makeMap(container) {
    var map = L.map(container, { scrollWheelZoom: false, zoomSnap: 0.5, fadeAnimation: false,
                                 zoomAnimation: false });
    map.attributionControl.setPrefix(false);
    return map;
  }

  function perimeterLayer(geojson) {
    return L.geoJSON(geojson, {
      style: function (f) { return STYLES[f.properties.type] || STYLES.commune; },
      onEachFeature: function (f, lyr) {
        var tip = document.createElement("span");
        var p = f.properties;
        tip.textContent = (KIND_LABELS[p.type] || p.type) + " " + p.code + " — " + p.nom;
        lyr.bindTooltip(tip, { sticky: true });
      }
    });
  }

  function pointMarker(lat, lon) {
    return L.circleMarker([lat, lon], {
      radius: 7, color: "#ffffff", weight: 2, fillColor: "#d00000", fillOpacity: 1
    }).bindTooltip("Lieu vérifié");
  }

  // Bounds of `focus` mirrored around the point: the point at the centre, the zone whole.
  function centredBounds(focus, lat, lon) {
    var dLat = Math.max(focus.getNorth() - lat, lat - focus.getSouth(), 0.0015);
    var dLon = Math.max(focus.getEast() - lon, lon - focus.getWest(), 0.002);
    return L.latLngBounds([lat - dLat, lon - dLon], [lat + dLat, lon + dLon]);
  }

  // The street named in « Que faire ? », drawn over the others and labelled where it passes
  // closest to the point.
  function highlightStreet(name, data, map, lat, lon) {
    if (!name) { return; }
    var feats = data.features.filter(function (f) { return f.properties.n === name; });
    if (!feats.length) { return; }
    var layer = L.geoJSON({ type: "FeatureCollection", features: feats }, {
      interactive: false, style: { color: "#1d4ed8", weight: 5, opacity: 0.75 }
    }).addTo(map);
    var best = null, bestD = Infinity, here = L.latLng(lat, lon);
    feats.forEach(function (f) {
      f.geometry.coordinates.forEach(function (c) {
        var d = here.distanceTo([c[1], c[0]]);
        if (d < bestD) { bestD = d; best = [c[1], c[0]]; }
      });
    });
    var label = document.createElement("span");
    label.textContent = name;
    L.tooltip({ permanent: true, direction: "top", className: "rue-citee", offset: [0, -4] })
      .setLatLng(best).setContent(label).addTo(map);
    map.getContainer().dataset.rueCitee = name;
    return layer;
  }

  function setupMap() {
    var section = document.getElementById("verdict");
    var container = document.getElementById("carte");
    var whole = document.getElementById("carte-quartier");
    if (!section || !container || typeof L === "undefined") { return; }
    var lat = parseFloat(section.dataset.lat);
    var lon = parseFloat(section.dataset.lon);
    if (!isFinite(lat) || !isFinite(lon)) { return; }
    // another territory than SEM (--territoire): its words in the tooltips
    if (section.dataset.libelleQpv) { KIND_LABELS.qpv = section.dataset.libelleQpv; }
    if (section.dataset.libelleAutres) { KIND_LABELS.qpv_hors_sem = section.dataset.libelleAutres; }
    var detail = makeMap(container);
    var overview = whole ? makeMap(whole) : null;
    var maps = overview ? [detail, overview] : [detail];
    var focus = null;
    function frame() {
      detail.setView([lat, lon], 17, { animate: false });
      if (overview) {
        var b = focus || L.latLng(lat, lon).toBounds(1000);
        overview.fitBounds(centredBounds(b, lat, lon), { padding: [8, 8], maxZoom: 17,
                                                         animate: false });
      }
    }
    frame();
    var pending = 2;
    function done(ok) {
      pending -= 1;
      if (!ok) { container.dataset.pret = "erreur"; }
      if (pending === 0 && container.dataset.pret !== "erreur") { container.dataset.pret = "1"; }
    }
    fetch("/api/v1/perimetres?rayon_m=3000&lat=" + lat + "&lon=" + lon,
          { headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (geojson) {
        var code = section.dataset.codeQp;
        maps.forEach(function (map) {
          var layer = perimeterLayer(geojson).addTo(map);
          layer.eachLayer(function (lyr) {
            var p = lyr.feature.properties;
            if (code && p.code === code && p.type !== "commune") { focus = lyr.getBounds(); }
          });
          pointMarker(lat, lon).addTo(map);
        });
        frame();
        done(true);
      })
      .catch(function () {
        maps.forEach(function (map) { pointMarker(lat, lon).addTo(map); });
        done(false);
      });
    fetch("/api/v1/voies?rayon_m=1200&lat=" + lat + "&lon=" + lon,
          { headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (data) {
        var note = document.getElementById("rues-note");
        if (note) {
          note.textContent = data.features.length ? "— " + data.couverture
            : "— pas de rues sur ce fond ici (" + data.couverture + ")";
        }
        if (typeof qpvgeoRues === "function" && data.features.length) {
          qpvgeoRues(detail, data, { outline: true }).addTo(detail);
          if (overview) { qpvgeoRues(overview, data, { outline: true }).addTo(overview); }
          container.dataset.rues = String(data.features.length);
          highlightStreet(section.dataset.rue, data, detail, lat, lon);
        }
        done(true);
      })
      .catch(function () { done(false); });
    window.addEventListener("beforeprint", function () {
      maps.forEach(function (map) { map.invalidateSize({ animate: false }); });
      frame();
    });
  }

  // ------------------------------------------------------------------ copy / print
  function setupActions() {
    var copy = document.getElementById("copier");
    var print = document.getElementById("imprimer");
    var text = document.getElementById("texte-verdict");
    var state = document.getElementById("copie-etat");
    if (copy && text) {
      copy.hidden = false;
      copy.addEventListener("click", function () {
        var value = text.textContent;
        var done = function () { state.textContent = "Résultat copié."; };
        var fallback = function () {
          var area = document.createElement("textarea");
          area.value = value;
          area.setAttribute("readonly", "");
          area.className = "visuellement-cache";
          document.body.appendChild(area);
          area.select();
          var ok = false;
          try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
          area.remove();
          state.textContent = ok ? "Résultat copié." : "Copie impossible : sélectionnez le texte ci-dessous.";
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(value).then(done, fallback);
        } else {
          fallback();
        }
      });
    }
    var fields = ["att-porteur", "att-action", "att-dossier"].map(function (id) {
      return document.getElementById(id);
    });
    var base = text ? text.textContent : "";
    function withFields() {  // the attestation fields also go into the copied text
      var extra = fields.filter(function (f) { return f && f.value.trim(); }).map(function (f) {
        return f.labels[0].textContent + " : " + f.value.trim();
      });
      fields.forEach(function (f) {  // and onto paper, as text that wraps (an input cuts it)
        var out = f && document.querySelector('.valeur-imprimee[data-champ="' + f.id + '"]');
        if (out) { out.textContent = f.value.trim(); }
      });
      if (text) { text.textContent = base + (extra.length ? "\n" + extra.join("\n") : ""); }
    }
    fields.forEach(function (f) { if (f) { f.addEventListener("input", withFields); } });
    if (print) {
      print.hidden = false;
      print.addEventListener("click", function () { window.print(); });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupSuggestions();
    setupMap();
    setupActions();
  });
})();
