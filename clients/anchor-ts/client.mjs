// Acceptance client for issue 23: @coral-xyz/anchor (0.30+), driven only by the shipped
// specification IDLs (program/idl/spec/*.json), against a running `python -m localnet`.
//
//   node client.mjs <rpc-url> <pubsub-url> <owner-keypair.json> <amount>
//
// The owner must hold `amount + 1` lamports' worth of SOL for fees and `amount` test USDT in
// its associated token account (tests/clients/ funds it). The script constructs `Program`
// for both programs from their spec IDLs, creates the owner's vault, deposits `amount`,
// decodes the vault account and the transactions' events, then withdraws `amount + 1` (an
// overdraw) and reports the error the client raised. Output: one JSON object on stdout.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import anchor from "@coral-xyz/anchor";
import { Connection, Keypair, PublicKey, SystemProgram } from "@solana/web3.js";

const { AnchorError, AnchorProvider, BN, EventParser, Program, Wallet } = anchor;

const IDL_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "program", "idl", "spec");
const TOKEN_PROGRAM = new PublicKey("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
const ATA_PROGRAM = new PublicKey("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL");

function loadIdl(name) {
  return JSON.parse(readFileSync(join(IDL_DIR, `${name}.json`), "utf8"));
}

function ata(owner, mint) {
  return PublicKey.findProgramAddressSync([owner.toBuffer(), TOKEN_PROGRAM.toBuffer(), mint.toBuffer()], ATA_PROGRAM)[0];
}

// BN and PublicKey values as JSON (strings), recursively.
function plain(value) {
  if (value instanceof BN) return value.toString();
  if (value instanceof PublicKey) return value.toBase58();
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

async function eventsOf(connection, parser, signature) {
  const tx = await connection.getTransaction(signature, { commitment: "confirmed", maxSupportedTransactionVersion: 0 });
  return [...parser.parseLogs(tx.meta.logMessages)].map((e) => ({ name: e.name, data: plain(e.data) }));
}

async function main() {
  const [url, wsEndpoint, keypairPath, amountText] = process.argv.slice(2);
  if (!url || !wsEndpoint || !keypairPath || !amountText) {
    console.error("usage: node client.mjs <rpc-url> <pubsub-url> <owner-keypair.json> <amount>");
    process.exit(2);
  }
  const owner = Keypair.fromSecretKey(Uint8Array.from(JSON.parse(readFileSync(keypairPath, "utf8"))));
  const amount = new BN(amountText);
  const connection = new Connection(url, { commitment: "confirmed", wsEndpoint });
  const provider = new AnchorProvider(connection, new Wallet(owner), {
    commitment: "confirmed",
    preflightCommitment: "confirmed",
  });
  // Program's constructor reads the spec IDL (address, discriminators, types): both programs.
  const vaultProgram = new Program(loadIdl("collateral_vault"), provider);
  const exchangeProgram = new Program(loadIdl("position_manager"), provider);

  const id = vaultProgram.programId;
  const [authority] = PublicKey.findProgramAddressSync([Buffer.from("vault_authority")], id);
  const [vault] = PublicKey.findProgramAddressSync([Buffer.from("vault"), owner.publicKey.toBuffer()], id);
  const authorityAccount = await vaultProgram.account.vaultAuthority.fetch(authority);
  const mint = authorityAccount.usdtMint;
  const vaultToken = ata(vault, mint);
  const ownerToken = ata(owner.publicKey, mint);
  const [exchange] = PublicKey.findProgramAddressSync([Buffer.from("exchange")], exchangeProgram.programId);
  const exchangeConfig = await exchangeProgram.account.exchangeConfig.fetch(exchange);

  const initSig = await vaultProgram.methods
    .initializeVault()
    .accountsStrict({
      owner: owner.publicKey,
      vault,
      vaultTokenAccount: vaultToken,
      usdtMint: mint,
      authority,
      systemProgram: SystemProgram.programId,
      tokenProgram: TOKEN_PROGRAM,
      associatedTokenProgram: ATA_PROGRAM,
    })
    .rpc();
  const depositSig = await vaultProgram.methods
    .deposit(amount)
    .accountsStrict({
      owner: owner.publicKey,
      vault,
      userTokenAccount: ownerToken,
      vaultTokenAccount: vaultToken,
      authority,
      tokenProgram: TOKEN_PROGRAM,
    })
    .rpc();
  const vaultAccount = await vaultProgram.account.collateralVault.fetch(vault);
  const parser = new EventParser(id, vaultProgram.coder);
  const events = [...(await eventsOf(connection, parser, initSig)), ...(await eventsOf(connection, parser, depositSig))];

  let overdraw;
  try {
    await vaultProgram.methods
      .withdraw(amount.addn(1))
      .accountsStrict({
        owner: owner.publicKey,
        vault,
        vaultTokenAccount: vaultToken,
        destination: ownerToken,
        authority,
        tokenProgram: TOKEN_PROGRAM,
      })
      .rpc();
    overdraw = { raised: "nothing" };
  } catch (err) {
    overdraw = err instanceof AnchorError
      ? {
          raised: "AnchorError",
          code: err.error.errorCode.code,
          number: err.error.errorCode.number,
          message: err.error.errorMessage,
          program: err.program.toBase58(),
        }
      : { raised: err?.constructor?.name ?? typeof err, message: String(err) };
  }

  const result = {
    anchorVersion: JSON.parse(readFileSync(new URL("./node_modules/@coral-xyz/anchor/package.json", import.meta.url)))
      .version,
    vaultAddress: vault.toBase58(),
    vault: plain(vaultAccount),
    exchangeOperator: exchangeConfig.operator.toBase58(),
    events,
    overdraw,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
