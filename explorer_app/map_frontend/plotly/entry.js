// The map's plotly.js: the core (which has the plain scatter) with the two other traces the map draws.
var Plotly = require("plotly.js/lib/core");
Plotly.register([require("plotly.js/lib/scattergl"), require("plotly.js/lib/heatmap")]);
module.exports = Plotly;
