package examples

var tokenwiseConfigs = []string{}

func manifestFiles() []string { return nil }
