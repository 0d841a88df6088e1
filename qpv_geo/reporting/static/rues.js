/* qpv-geo — the OpenStreetMap street layer of the offline maps (no tiles).
 *
 * qpvgeoRues(map, data, options) -> L.LayerGroup
 *   data: the GeoJSON of qpv_geo.reporting.osm.roads_geojson (properties n = street name, c = class
 *         0 motorway/trunk/primary, 1 secondary/tertiary, 2 other), with its
 *         "attribution" and "min_zoom_names" members.
 *   options: {minZoomNames, minZoomRoads, attribution, color, outline, avoid} (default
 *            from data); outline: a dashed rectangle where the layer stops (data.bbox);
 *            avoid: a function returning boxes [x0, y0, x1, y1] (layer pixels) no street name
 *            may cover (the checked point, another label).
 * Roads are drawn in their own pane under the perimeters (overlayPane, z-index 400); street
 * names are labels along the road at zoom >= minZoomNames, one per street in a 160 px cell
 * and never overlapping another label.
 */
function qpvgeoRues(map, data, options) {
  options = options || {};
  var minZoom = options.minZoomNames || data.min_zoom_names || 16;
  // Below this zoom the streets would only grey the map: not drawn.
  var minZoomRoads = options.minZoomRoads || 12;
  var attribution = options.attribution || data.attribution || '';
  if (!map.getPane('qpvgeoRues')) {
    map.createPane('qpvgeoRues').style.zIndex = 350;
    map.getPane('qpvgeoRues').style.pointerEvents = 'none';
    map.createPane('qpvgeoRuesNoms').style.zIndex = 450;
    map.getPane('qpvgeoRuesNoms').style.pointerEvents = 'none';
  }
  var widths = [[2.2, 4.5], [1.6, 3.2], [0.9, 2.0]];
  var renderer = L.canvas({pane: 'qpvgeoRues', padding: 0.3});
  var roads = L.geoJSON(data, {
    pane: 'qpvgeoRues', renderer: renderer, interactive: false, attribution: attribution,
    style: function (f) {
      var w = widths[f.properties.c] || widths[2];
      return {color: options.color || '#8f8f8f', weight: map.getZoom() >= 15 ? w[1] : w[0],
              opacity: 0.9, lineCap: 'round', lineJoin: 'round'};
    }
  });
  var labels = L.layerGroup([], {pane: 'qpvgeoRuesNoms'});
  var group = L.layerGroup([roads, labels]);
  if (options.outline && data.bbox) {
    var b = data.bbox;
    group.addLayer(L.rectangle([[b[1], b[0]], [b[3], b[2]]], {interactive: false,
      color: '#777777', weight: 1, dashArray: '6 5', fill: false}));
  }
  group.qpvgeoRoads = roads;
  group.qpvgeoLabels = labels;

  function place(coords) {
    // Point halfway along the line on screen, and the angle of the segment there.
    var pts = coords.map(function (c) { return map.latLngToLayerPoint([c[1], c[0]]); });
    var total = 0, i;
    for (i = 1; i < pts.length; i++) { total += pts[i].distanceTo(pts[i - 1]); }
    var half = total / 2, run = 0;
    for (i = 1; i < pts.length; i++) {
      var seg = pts[i].distanceTo(pts[i - 1]);
      if (run + seg >= half && seg > 0) {
        var t = (half - run) / seg;
        var p = pts[i - 1].add(pts[i].subtract(pts[i - 1]).multiplyBy(t));
        var angle = Math.atan2(pts[i].y - pts[i - 1].y, pts[i].x - pts[i - 1].x) * 180 / Math.PI;
        if (angle > 90) { angle -= 180; } else if (angle < -90) { angle += 180; }
        return {point: p, angle: angle, length: total};
      }
      run += seg;
    }
    return null;
  }

  function refresh() {
    labels.clearLayers();
    if (!map.hasLayer(group)) { return; }
    // Far out the streets are not drawn at all (a canvas of thousands of hidden lines costs
    // the first render); the attribution goes and comes back with them.
    var near = map.getZoom() >= minZoomRoads;
    if (near && !group.hasLayer(roads)) { group.addLayer(roads); }
    if (!near && group.hasLayer(roads)) { group.removeLayer(roads); return; }
    roads.setStyle(roads.options.style);
    if (map.getZoom() < minZoom) { return; }
    var view = map.getBounds().pad(0.1), size = map.getSize();
    var origin = map.latLngToLayerPoint(map.getBounds().getNorthWest());
    var boxes = typeof options.avoid === 'function' ? options.avoid().slice() : [];
    var cells = {};
    var feats = data.features.slice().sort(function (a, b) {
      return a.properties.c - b.properties.c; });
    feats.forEach(function (f) {
      var name = f.properties.n;
      if (!name) { return; }
      var cs = f.geometry.coordinates;
      var inView = cs.some(function (c) { return view.contains([c[1], c[0]]); });
      if (!inView) { return; }
      var at = place(cs);
      var textW = name.length * 6.2 + 8;
      if (!at || at.length < Math.min(textW, 120) * 0.8) { return; }
      var rel = at.point.subtract(origin);
      if (rel.x < 0 || rel.y < 0 || rel.x > size.x || rel.y > size.y) { return; }
      var cell = name + '|' + Math.floor(rel.x / 160) + '|' + Math.floor(rel.y / 160);
      if (cells[cell]) { return; }
      var rad = Math.abs(at.angle) * Math.PI / 180;
      var w = Math.abs(textW * Math.cos(rad)) + Math.abs(14 * Math.sin(rad));
      var h = Math.abs(textW * Math.sin(rad)) + Math.abs(14 * Math.cos(rad));
      var box = [at.point.x - w / 2, at.point.y - h / 2, at.point.x + w / 2, at.point.y + h / 2];
      for (var k = 0; k < boxes.length; k++) {
        var b = boxes[k];
        if (box[0] < b[2] && box[2] > b[0] && box[1] < b[3] && box[3] > b[1]) { return; }
      }
      boxes.push(box);
      cells[cell] = true;
      var span = document.createElement('span');
      span.className = 'qpvgeo-rue';
      span.textContent = name;
      span.style.transform = 'translate(-50%, -50%) rotate(' + at.angle.toFixed(1) + 'deg)';
      // the element itself, not its HTML: a parsed style attribute would be refused by a
      // Content-Security-Policy without 'unsafe-inline' (the web page's)
      var icon = L.divIcon({className: 'qpvgeo-rue-icone', html: span, iconSize: null});
      labels.addLayer(L.marker(map.layerPointToLatLng(at.point),
        {icon: icon, pane: 'qpvgeoRuesNoms', interactive: false, keyboard: false}));
    });
  }
  map.on('zoomend moveend', refresh);
  group.on('add', refresh);
  group.on('remove', function () { labels.clearLayers(); });
  group.qpvgeoRefresh = refresh;
  return group;
}
