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
    L.control.scale({ metric: true, imperial: false, position: "bottomleft" }).addTo(map);
    // The point above every label (street names 450, tooltips 650): never covered.
    map.createPane("qpvgeoPoint").style.zIndex = 660;
    map.createPane("qpvgeoRueCitee").style.zIndex = 640;
    map.getPane("qpvgeoRueCitee").style.pointerEvents = "none";
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

  // Radius (px) of the point's marker, and the room kept around it free of any label.
  var POINT_RADIUS = 7, POINT_CLEAR = 6;

  function pointMarker(lat, lon) {
    return L.circleMarker([lat, lon], {
      radius: POINT_RADIUS, color: "#ffffff", weight: 2, fillColor: "#d00000", fillOpacity: 1,
      pane: "qpvgeoPoint", className: "qpvgeo-point"
    }).bindTooltip("Lieu vérifié");
  }

  // The box (layer pixels) no label may cover: the point's marker and a margin around it.
  function pointBox(map, lat, lon) {
    var p = map.latLngToLayerPoint([lat, lon]), r = POINT_RADIUS + 2 + POINT_CLEAR;
    return [p.x - r, p.y - r, p.x + r, p.y + r];
  }

  // Bounds of `focus` mirrored around the point: the point at the centre, the zone whole.
  function centredBounds(focus, lat, lon) {
    var dLat = Math.max(focus.getNorth() - lat, lat - focus.getSouth(), 0.0015);
    var dLon = Math.max(focus.getEast() - lon, lon - focus.getWest(), 0.002);
    return L.latLngBounds([lat - dLat, lon - dLon], [lat + dLat, lon + dLon]);
  }

  // The street named in « Que faire ? », drawn over the others and labelled where it passes
  // closest to the point — the label pushed away from the point along the line from the point
  // to the street (with a leader line to the street when it had to move): it never covers
  // the point. ``avoid`` collects the boxes the other street names must keep clear of.
  function highlightStreet(name, data, map, lat, lon, avoid) {
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
        if (d < bestD) { bestD = d; best = L.latLng(c[1], c[0]); }
      });
    });
    var span = document.createElement("span");
    span.className = "rue-citee";
    span.textContent = name;
    var label = L.marker(best, { pane: "qpvgeoRueCitee", interactive: false, keyboard: false,
      icon: L.divIcon({ className: "rue-citee-icone", html: span, iconSize: null }) });
    var leader = L.polyline([best, best], { pane: "qpvgeoRueCitee", interactive: false,
      color: "#1d4ed8", weight: 1.5, dashArray: "3 3" });
    var group = L.layerGroup([label, leader]).addTo(map);
    function place() {
      var w = span.offsetWidth || name.length * 7 + 12, h = span.offsetHeight || 18;
      var p = map.latLngToLayerPoint(here), s = map.latLngToLayerPoint(best);
      var r = POINT_RADIUS + 2 + POINT_CLEAR;
      var dx = s.x - p.x, dy = s.y - p.y, len = Math.sqrt(dx * dx + dy * dy);
      var ux = len > 1 ? dx / len : 0, uy = len > 1 ? dy / len : -1;
      // distance from the point at which the label's box clears the point's box
      var need = Math.min(Math.abs(ux) > 1e-6 ? (w / 2 + r) / Math.abs(ux) : Infinity,
                          Math.abs(uy) > 1e-6 ? (h / 2 + r) / Math.abs(uy) : Infinity);
      var at = len >= need ? s : L.point(p.x + ux * need, p.y + uy * need);
      label.setLatLng(map.layerPointToLatLng(at));
      leader.setLatLngs(len >= need ? [best, best] : [map.layerPointToLatLng(at), best]);
      avoid.size = [w, h];
    }
    // the label's box now (layer pixels), whatever moved since it was placed
    avoid.cited = function () {
      var at = map.latLngToLayerPoint(label.getLatLng()), w = avoid.size[0], h = avoid.size[1];
      return [at.x - w / 2, at.y - h / 2, at.x + w / 2, at.y + h / 2];
    };
    map.on("zoomend viewreset moveend", place);
    place();
    map.getContainer().dataset.rueCitee = name;
    return layer;
  }

  // What the legend says of the street layer: where it stops (the dashed rectangle drawn on
  // the maps), or, with no street here, where to see the place with its streets.
  function streetsNote(note, data) {
    if (!note) { return; }
    note.replaceChildren();
    if (data.features.length) {
      var key = document.createElement("span");
      key.className = "cle cle-limite-rues";
      note.append("· ", key, " limite de la couche des rues (" + data.couverture + ")");
      return;
    }
    var link = document.createElement("a");
    link.href = OFFICIAL_TOOL;
    link.textContent = "sig.ville.gouv.fr";
    note.append("— pas de rues sur ce fond ici (" + data.couverture + ") : voyez le lieu et "
                + "ses rues sur l'outil officiel de l'ANCT, ", link, " (recherche par adresse).");
  }

  // The official locator of the QPV (ANCT), for a place the offline streets do not reach.
  var OFFICIAL_TOOL = "https://sig.ville.gouv.fr/";

  // Another territory than SEM: its commune outlines when the administrator installed them
  // (simplified), else the legend says the blank background is not « no commune here » and
  // whom to ask.
  function communesNote(section, geojson) {
    var note = document.getElementById("communes-note");
    if (!note || !section.dataset.libelleQpv) { return; }
    var any = geojson.features.some(function (f) { return f.properties.type === "commune"; });
    note.replaceChildren();
    if (any) {
      var key = document.createElement("span");
      key.className = "cle cle-commune";
      note.append(" · ", key, " communes (contours simplifiés)");
      return;
    }
    note.textContent = " · fond : contours des communes non installés pour ce territoire "
      + "(seuls les QPV sont dessinés) : demandez à l'administrateur de qpv-geo de les installer";
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
        communesNote(section, geojson);
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
        streetsNote(document.getElementById("rues-note"), data);
        if (typeof qpvgeoRues === "function" && data.features.length) {
          var avoid = {};
          highlightStreet(section.dataset.rue, data, detail, lat, lon, avoid);
          maps.forEach(function (map) {
            // no street name on the point, nor on the cited street's label (detail map)
            var keep = function () {
              var boxes = [pointBox(map, lat, lon)];
              if (map === detail && avoid.cited) { boxes.push(avoid.cited()); }
              return boxes;
            };
            qpvgeoRues(map, data, { outline: true, avoid: keep }).addTo(map);
          });
          container.dataset.rues = String(data.features.length);
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
