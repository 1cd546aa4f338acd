// Loads each report's section (its chart, matrix and table) once the first screen is up,
// all at once, and draws its chart from the figure it carries (plotly.js, served locally).
function drawCharts(root) {
  root.querySelectorAll(".chart[data-figure]").forEach(function (element) {
    var source = document.getElementById(element.dataset.figure);
    if (!source) { return; }
    var figure = JSON.parse(source.textContent);
    Plotly.newPlot(element, figure.data, figure.layout, {responsive: true, displaylogo: false})
      .then(function () { element.dataset.drawn = "true"; });
  });
}

document.querySelectorAll(".section-body[data-src]").forEach(function (body) {
  fetch(body.dataset.src, {credentials: "same-origin"})
    .then(function (response) {
      if (!response.ok) { throw new Error(response.status); }
      return response.text();
    })
    .then(function (html) {
      body.innerHTML = html;
      drawCharts(body);
      body.dataset.loaded = "true";
    })
    .catch(function () {
      var note = document.createElement("p");
      note.className = "errornote";
      note.textContent = body.dataset.error;
      body.replaceChildren(note);
      body.dataset.loaded = "failed";
    });
});
