package main

import (
	"github.com/spf13/pflag"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
)

// debugVerbosity is the klog verbosity of K3s's --debug.
const debugVerbosity = 4

// loggingFlags are the logging flags of Kubernetes' components (-v, --vmodule,
// --logging-format) and K3s's --debug.
type loggingFlags struct {
	config *logsapi.LoggingConfiguration
	debug  bool
}

func (l *loggingFlags) register(fs *pflag.FlagSet) {
	l.config = logsapi.NewLoggingConfiguration()
	fs.BoolVar(&l.debug, "debug", false, "turn on debug logs (-v=4)")
	logsapi.AddFlags(l.config, fs)
}

// settings returns the logging configuration, --debug raising the verbosity to 4.
func (l *loggingFlags) settings() *logsapi.LoggingConfiguration {
	if l.debug && l.config.Verbosity < debugVerbosity {
		l.config.Verbosity = debugVerbosity
	}
	return l.config
}
