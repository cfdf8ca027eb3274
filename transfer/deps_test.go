package transfer

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps transfer below the node engine (style §12): peer wires it
// in, so it must not import peer or anything that peer imports it beside.
func TestDeps(t *testing.T) {
	banned := map[string]string{
		"peer":             "peer wires transfer in; imports flow peer -> transfer -> ipmsg",
		"discovery":        "presence is peer's business; transfer is told who may fetch what",
		"cmd/":             "nothing imports a command",
		"ui":               "the GUI sits above peer",
		"internal/control": "the control socket belongs to the command line",
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		rest, ok := strings.CutPrefix(dep, "github.com/lanchat/lanchat/")
		if !ok {
			continue
		}
		for prefix, why := range banned {
			if strings.HasPrefix(rest, prefix) {
				t.Errorf("transfer depends on %s: %s", dep, why)
			}
		}
	}
}
