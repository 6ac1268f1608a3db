package benchworkload

import (
	"os"
	"strconv"
)

// ScaleMax is the largest scale a scale benchmark runs: K3SNET_SCALE_MAX when it is a positive
// number, else def, so that `make bench` stays short and a longer run asks for more.
func ScaleMax(def int) int {
	if v, err := strconv.Atoi(os.Getenv("K3SNET_SCALE_MAX")); err == nil && v > 0 {
		return v
	}
	return def
}
