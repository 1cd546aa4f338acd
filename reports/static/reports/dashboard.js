// Draws each report's chart from the figure the page carries (plotly.js, served locally).
document.querySelectorAll(".chart[data-figure]").forEach(function (element) {
  var source = document.getElementById(element.dataset.figure);
  if (!source) { return; }
  var figure = JSON.parse(source.textContent);
  Plotly.newPlot(element, figure.data, figure.layout, {responsive: true, displaylogo: false})
    .then(function () { element.dataset.drawn = "true"; });
});
