// The console page: wires the token panel, builder, batch runner, job view, job list and history
// together. config.permissions says what the user may do: without send_request the page is
// read-only (the server renders the controls disabled), without view_exchange it has no history
// and no job results. ?job=<key> in the address opens that job (a reload keeps following it).
// The connection picker (connections.js) says which API connection every request goes to.

import { BatchRunner } from "./batch.js";
import { Builder } from "./builder.js";
import { Connections } from "./connections.js";
import { $ } from "./dom.js";
import { History } from "./history.js";
import { JobView, jobFromAddress } from "./job.js";
import { JobList } from "./jobs.js";
import { TokenPanel } from "./token.js";

const config = JSON.parse($("#page-config").textContent);
const connections = new Connections(config);
const token = new TokenPanel(config, connections);
let history = null;
const afterCalls = () => {
  token.sync();
  history?.refresh();
};
const builder = new Builder(config, connections, { onSent: afterCalls });
connections.onChange(() => builder.changed()); // the cURL command's base URL
const jobView = new JobView(config, {
  onChange: () => {
    afterCalls();
    jobList.refresh();
  },
});
const jobList = new JobList(config, connections, { onOpen: (key) => open(key) });
function open(key, options) {
  jobView.open(key, options);
  jobList.highlight(key);
}
new BatchRunner(config, builder, connections, {
  onStarted: (job) => {
    open(job.key, { job });
    jobList.refresh();
  },
});
if (config.permissions.view_exchange) {
  history = new History(config, connections, {
    onLoad: (detail) => {
      if (detail.replay) builder.load(detail.replay, detail.id);
      builder.showRecorded(detail);
    },
  });
}
const following = jobFromAddress();
if (following) open(following, { remember: false });
window.addEventListener("popstate", () => {
  const key = jobFromAddress();
  if (key) open(key, { remember: false });
  else jobView.close();
});
document.body.dataset.ready = "true";
