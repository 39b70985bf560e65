import { memoryStore } from "../../src/stores/memory.ts";
import { testStore } from "./contract.ts";

testStore("memory", { make: async () => memoryStore() });
