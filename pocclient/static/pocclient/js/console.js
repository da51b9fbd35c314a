// The console page: wires the token panel, builder, batch runner and history together.
// config.permissions says what the user may do: without send_request the page is read-only
// (the server renders the controls disabled), without view_exchange it has no history.

import { BatchRunner } from "./batch.js";
import { Builder } from "./builder.js";
import { $ } from "./dom.js";
import { History } from "./history.js";
import { TokenPanel } from "./token.js";

const config = JSON.parse($("#page-config").textContent);
const token = new TokenPanel(config);
let history = null;
const afterCalls = () => {
  token.sync();
  history?.refresh();
};
const builder = new Builder(config, { onSent: afterCalls });
new BatchRunner(config, builder, { onDone: afterCalls });
if (config.permissions.view_exchange) {
  history = new History(config, {
    onLoad: (detail) => {
      if (detail.replay) builder.load(detail.replay, detail.id);
      builder.showRecorded(detail);
    },
  });
}
document.body.dataset.ready = "true";
