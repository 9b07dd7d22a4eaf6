// sawtooth-sdk calls the zeromq 4/5 API (zmq.socket("dealer")); zeromq 6 ships that API as
// zeromq/v5-compat, so this package stands in for the SDK's `zeromq` dependency.
module.exports = require("zeromq/v5-compat");
