// Start the screen once every view script has registered.
"use strict";

window.QSEC.start();
